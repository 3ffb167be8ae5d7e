//! Typed messages (feature `json`): values sent as JSON text, and a stream of values decoded
//! from what comes back, with serde and serde_json. A message that does not decode is an
//! error the application sees in the stream, never a panic and never a silent drop.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::message::{CloseEvent, Message, Sent};
use crate::messages::MessageStream;
use crate::socket::WebSocket;

impl WebSocket {
    /// Sends `value` as a JSON text message, as [`send`](Self::send) sends; a value serde_json
    /// cannot serialize (a map with keys that are not strings, say) is [`Error::Json`].
    pub fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<Sent, Error> {
        self.send(to_json(value)?)
    }

    /// Like [`send_json`](Self::send_json), once [`send_async`](Self::send_async) would send.
    pub async fn send_json_async<T: Serialize + ?Sized>(&self, value: &T) -> Result<Sent, Error> {
        let text = to_json(value)?;
        self.send_async(text).await
    }

    /// A stream of the values received from now on: each message (text, or binary holding
    /// UTF-8 JSON) decoded as a `T`, or [`Error::Json`] with serde_json's reason when it is not
    /// one; the stream goes on after such a message. It ends after the socket's last close,
    /// which [`JsonStream::close_event`] then tells.
    pub fn json<T: DeserializeOwned>(&self) -> JsonStream<T> {
        JsonStream {
            messages: MessageStream::new(self.clone(), self.events()),
            _values: PhantomData,
        }
    }
}

/// The values a socket receives, decoded from JSON; made by [`WebSocket::json`].
#[derive(Debug)]
pub struct JsonStream<T> {
    messages: MessageStream,
    _values: PhantomData<fn() -> T>,
}

impl<T> JsonStream<T> {
    /// The socket.
    pub fn socket(&self) -> &WebSocket {
        self.messages.socket()
    }

    /// The last close seen so far; see [`MessageStream::close_event`].
    pub fn close_event(&self) -> Option<&CloseEvent> {
        self.messages.close_event()
    }
}

impl<T: DeserializeOwned> Stream for JsonStream<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let message = ready!(Pin::new(&mut self.messages).poll_next(cx));
        Poll::Ready(message.map(|message| from_json(&message)))
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|error| Error::Json(error.to_string()))
}

/// `message` decoded as a `T`.
fn from_json<T: DeserializeOwned>(message: &Message) -> Result<T, Error> {
    let decoded = match message {
        Message::Text(text) => serde_json::from_str(text),
        Message::Binary(data) => serde_json::from_slice(data),
    };
    decoded.map_err(|error| Error::Json(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
    struct Point {
        x: i32,
        y: i32,
    }

    #[test]
    fn text_and_binary_decode_and_garbage_is_an_error() {
        let point = Point { x: 1, y: -2 };
        let text = to_json(&point).unwrap();
        assert_eq!(from_json::<Point>(&Message::Text(text.clone())), Ok(point));
        let binary = Message::from(text.into_bytes());
        assert_eq!(from_json::<Point>(&binary), Ok(Point { x: 1, y: -2 }));
        let garbage = from_json::<Point>(&Message::Text("Received:  {}".into()));
        assert!(matches!(garbage, Err(Error::Json(_))), "{garbage:?}");
        let wrong = from_json::<Point>(&Message::Text(r#"{"x": 1}"#.into()));
        assert!(
            matches!(&wrong, Err(Error::Json(reason)) if reason.contains("y")),
            "{wrong:?}"
        );
    }

    #[test]
    fn a_value_json_cannot_hold_is_an_error() {
        let map: std::collections::BTreeMap<(i32, i32), i32> = [((1, 2), 3)].into();
        assert!(matches!(to_json(&map), Err(Error::Json(_))));
    }
}
