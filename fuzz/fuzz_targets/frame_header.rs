//! The frame header as the layers under tungstenite read it (`frame_header::parse`): any
//! bytes. A header is found in its first 14 bytes or never; what follows it does not change
//! it; every shorter prefix reads as a header cut off; formatted again it reads the same; an
//! error is a reserved opcode in the first byte, and no prefix of the bytes reads as a header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsecho::fuzzing::parse_frame_header;

fuzz_target!(|data: &[u8]| {
    match parse_frame_header(data) {
        Ok(Some((header, length, size))) => {
            assert!((2..=14).contains(&size) && size <= data.len(), "{size}");
            for cut in 0..size {
                assert!(
                    matches!(parse_frame_header(&data[..cut]), Ok(None)),
                    "a prefix of {cut} bytes of a {size}-byte header"
                );
            }
            let mut longer = data[..size].to_vec();
            longer.extend_from_slice(&[0xff; 20]);
            let again = parse_frame_header(&longer).expect("the same header");
            assert_eq!(again, Some((header.clone(), length, size)));
            let mut formatted = Vec::new();
            header.format(length, &mut formatted).expect("into a Vec");
            assert!(
                formatted.len() <= size,
                "{formatted:02x?} from {size} bytes"
            );
            let reread = parse_frame_header(&formatted).expect("a header we formatted");
            assert_eq!(reread, Some((header, length, formatted.len())));
        }
        Ok(None) => assert!(data.len() < 14, "no header in {data:02x?}"),
        Err(_) => {
            let opcode = data[0] & 0x0f;
            assert!(matches!(opcode, 3..=7 | 11..=15), "{data:02x?}");
            for cut in 0..data.len() {
                let prefix = parse_frame_header(&data[..cut]);
                assert!(matches!(prefix, Ok(None) | Err(_)), "{data:02x?}");
            }
        }
    }
});
