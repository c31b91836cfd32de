//! The extension block parser: never panics, and a parsed block re-encodes to a block that
//! parses to the same entries.
#![no_main]

use dispersy::wire::extension::Extensions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Extensions::parse(data) {
        let again = Extensions::parse(&e.to_bytes()).expect("an encoded block parses");
        assert_eq!(again, e);
    }
});
