//! The fastwebsockets baseline, as its own process: prints `listening on ws://ADDR/`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = bench::listen()?;
    println!("listening on ws://{}/", listener.local_addr()?);
    bench::fastwebsockets_echo(listener).await;
    Ok(())
}
