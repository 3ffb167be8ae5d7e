//! The read-ahead (`read_ahead`): any bytes, arriving in pieces of any size (some reads
//! pending first), read through it with buffers of any size. What comes out is exactly what
//! went in; no read of the socket is offered more than the larger of the caller's buffer and
//! `CHUNK`; it holds a buffer of its own only after a read filled the caller's (small
//! messages go straight through), and none once the stream has ended.
#![no_main]

use arbitrary::Arbitrary;
use fuzz::{Scripted, block_on};
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncReadExt;
use wsecho::fuzzing::{READ_AHEAD_CHUNK, ReadAhead, read_ahead_is_buffering};

#[derive(Arbitrary, Debug)]
struct Input {
    bytes: Vec<u8>,
    /// Repeated to make long streams, so that `CHUNK` is reached.
    repeat: u8,
    sizes: Vec<u16>,
    reads: Vec<u16>,
    pending: u64,
}

fuzz_target!(|input: Input| {
    let mut sent = Vec::new();
    for _ in 0..=input.repeat % 8 {
        sent.extend_from_slice(&input.bytes);
    }
    let scripted = Scripted::new(&sent, &input.sizes, input.pending);
    let offered = scripted.offered.clone();
    let mut socket = ReadAhead::new(scripted);
    let largest = input
        .reads
        .iter()
        .map(|s| usize::from(*s).max(1))
        .max()
        .unwrap_or(512);
    let received = block_on(async {
        let mut received = Vec::new();
        let mut filled_one = false;
        for index in 0.. {
            let size = (input.reads.get(index % input.reads.len().max(1)))
                .map_or(512, |s| usize::from(*s).max(1));
            let mut buffer = vec![0; size];
            let n = socket
                .read(&mut buffer)
                .await
                .expect("the script never fails");
            if n == 0 {
                break;
            }
            filled_one |= n == size;
            assert!(
                filled_one || !read_ahead_is_buffering(&socket),
                "a buffer before any read filled the caller's"
            );
            received.extend_from_slice(&buffer[..n]);
        }
        received
    });
    assert_eq!(received, sent);
    assert!(
        !read_ahead_is_buffering(&socket),
        "a buffer held after the end"
    );
    let offered = offered.borrow();
    let bound = largest.max(READ_AHEAD_CHUNK);
    assert!(offered.iter().all(|n| *n <= bound), "{offered:?}");
});
