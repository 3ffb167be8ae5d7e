//! The fastwebsockets baseline, as its own process: prints `listening on ws://ADDR/`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on ws://{}/", listener.local_addr()?);
    bench::fastwebsockets_echo(listener).await;
    Ok(())
}
