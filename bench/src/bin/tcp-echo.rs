//! The plain TCP echo baseline, as its own process: prints `listening on tcp://ADDR/`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let listener = bench::listen()?;
    println!("listening on tcp://{}/", listener.local_addr()?);
    bench::tcp_echo(listener).await;
    Ok(())
}
