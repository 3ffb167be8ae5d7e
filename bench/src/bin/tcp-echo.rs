//! The plain TCP echo baseline, as its own process: prints `listening on tcp://ADDR/`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on tcp://{}/", listener.local_addr()?);
    bench::tcp_echo(listener).await;
    Ok(())
}
