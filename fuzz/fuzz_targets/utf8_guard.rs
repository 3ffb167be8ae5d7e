//! The UTF-8 guard (`utf8_guard`), in two parts.
//!
//! - Its incremental check accepts exactly what `std::str::from_utf8` accepts, however the
//!   bytes are split: each push says `false` exactly when the bytes so far can no longer
//!   begin valid UTF-8, and what stays pending at the end is the cut-off character.
//! - The guard over a socket: valid text, in messages fragmented anywhere, between pings,
//!   delivered in reads of any size, passes through unchanged and is never failed; and the
//!   guard stands at a message boundary at the end. Any bytes at all: what it passes on is
//!   the start of what came, and once it fails a read it fails every read.
#![no_main]

use arbitrary::Arbitrary;
use fuzz::{Scripted, block_on, client_frame, text};
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncReadExt;
use wsecho::fuzzing::{Utf8Guard, Utf8Stream, is_invalid_utf8};

#[derive(Arbitrary, Debug)]
struct Message {
    payload: Vec<u8>,
    /// Where the message is cut into fragments.
    cuts: Vec<u8>,
    mask: [u8; 4],
    ping_between: bool,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Check {
        bytes: Vec<u8>,
        cuts: Vec<u8>,
    },
    Valid {
        messages: Vec<Message>,
        sizes: Vec<u16>,
        reads: Vec<u16>,
        pending: u64,
    },
    Any {
        bytes: Vec<u8>,
        sizes: Vec<u16>,
        reads: Vec<u16>,
        max_size: u16,
    },
}

/// `bytes` cut after each of `cuts` bytes (each at least one), the rest last.
fn pieces<'a>(bytes: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = bytes;
    for cut in cuts {
        let (piece, after) = rest.split_at(usize::from(*cut).min(rest.len()));
        pieces.push(piece);
        rest = after;
    }
    pieces.push(rest);
    pieces
}

fn check(bytes: &[u8], cuts: &[u8]) {
    let mut stream = Utf8Stream::default();
    let mut so_far = 0;
    for piece in pieces(bytes, cuts) {
        so_far += piece.len();
        let could_be_valid = match std::str::from_utf8(&bytes[..so_far]) {
            Ok(_) => true,
            Err(error) => error.error_len().is_none(),
        };
        assert_eq!(
            stream.push(piece),
            could_be_valid,
            "{bytes:02x?} at {so_far}"
        );
        if !could_be_valid {
            return;
        }
    }
    let pending = match std::str::from_utf8(bytes) {
        Ok(_) => 0,
        Err(error) => bytes.len() - error.valid_up_to(),
    };
    assert_eq!(stream.pending(), pending, "{bytes:02x?}");
}

/// Reads everything through the guard in reads of the sizes given: what passed, and whether
/// a read failed with the guard's error (every read after it must too).
fn read_through(guard: &mut Utf8Guard<Scripted>, reads: &[u16]) -> (Vec<u8>, bool) {
    block_on(async {
        let mut passed = Vec::new();
        for index in 0.. {
            let size = reads
                .get(index % reads.len().max(1))
                .map_or(512, |s| usize::from(*s).max(1));
            let mut buffer = vec![0; size];
            match guard.read(&mut buffer).await {
                Ok(0) => return (passed, false),
                Ok(n) => passed.extend_from_slice(&buffer[..n]),
                Err(error) => {
                    assert!(is_invalid_utf8(&error), "{error}");
                    let again = guard.read(&mut buffer).await.expect_err("failed for good");
                    assert!(is_invalid_utf8(&again));
                    return (passed, true);
                }
            }
        }
        unreachable!()
    })
}

fuzz_target!(|input: Input| match input {
    Input::Check { bytes, cuts } => check(&bytes, &cuts),
    Input::Valid {
        messages,
        sizes,
        reads,
        pending,
    } => {
        let mut stream = Vec::new();
        for message in &messages {
            let text = text(&message.payload);
            let fragments = pieces(text.as_bytes(), &message.cuts);
            let last = fragments.len() - 1;
            for (index, fragment) in fragments.into_iter().enumerate() {
                let fin = if index == last { 0x80 } else { 0 };
                let opcode = if index == 0 { 0x1 } else { 0x0 };
                stream.extend(client_frame(fin | opcode, message.mask, fragment));
                if message.ping_between && index != last {
                    stream.extend(client_frame(0x89, message.mask, b"ping"));
                }
            }
        }
        let mut guard = Utf8Guard::new(Scripted::new(&stream, &sizes, pending), &[], usize::MAX);
        let (passed, failed) = read_through(&mut guard, &reads);
        assert!(!failed, "valid text failed: {messages:?}");
        assert_eq!(passed, stream);
        assert!(guard.at_message_boundary());
    }
    Input::Any {
        bytes,
        sizes,
        reads,
        max_size,
    } => {
        let mut guard =
            Utf8Guard::new(Scripted::new(&bytes, &sizes, 0), &[], usize::from(max_size));
        let (passed, failed) = read_through(&mut guard, &reads);
        assert!(bytes.starts_with(&passed));
        if !failed {
            assert_eq!(passed, bytes);
        }
    }
});
