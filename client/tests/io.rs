//! Bytes as a stream (`WebSocket::io`): a codec from a well-kept crate (asynchronous-codec's
//! lines) over the socket, in the browser and natively against the echo server, which echoes
//! binary messages as they are. Lines split across writes at every boundary, and writes that
//! hold several lines, come back as the same lines.

use futures_util::SinkExt;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test_configure;
use wasm_websocket::WebSocket;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{next, server_url, transport_test};

transport_test!(
    async fn lines_over_the_byte_stream_survive_any_split() {
        use asynchronous_codec::{Framed, LinesCodec};
        use futures_util::AsyncWriteExt;

        let socket = WebSocket::open(server_url()).await.unwrap();
        let mut lines = Framed::new(socket.io(), LinesCodec);
        // Whole lines, through the codec (whose encoder writes the text as it is given).
        lines.send("hello\n".to_owned()).await.unwrap();
        lines.send("world\n".to_owned()).await.unwrap();
        assert_eq!(next(&mut lines).await.unwrap().unwrap(), "hello\n");
        assert_eq!(next(&mut lines).await.unwrap().unwrap(), "world\n");
        // Raw writes that cut a line at every boundary, and one write holding two lines.
        let text = b"split\nacross\n";
        for cut in 0..=text.len() {
            // Framed derefs to the byte stream under it.
            let io: &mut wasm_websocket::ByteStream = &mut lines;
            io.write_all(&text[..cut]).await.unwrap();
            io.write_all(&text[cut..]).await.unwrap();
            assert_eq!(
                next(&mut lines).await.unwrap().unwrap(),
                "split\n",
                "cut at {cut}"
            );
            assert_eq!(
                next(&mut lines).await.unwrap().unwrap(),
                "across\n",
                "cut at {cut}"
            );
        }
        // Closing the writer closes the socket; reading then ends.
        lines.close().await.unwrap();
        assert!(next(&mut lines).await.is_none());
        assert_eq!(lines.close_event().map(|close| close.code), Some(1000));
    }
);
