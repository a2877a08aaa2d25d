//! Split GGUFs (`model::gguf::split`): the tiny model split in three by gguf-py's own splitting
//! writer (`models/tiny/split/`, from `models/split_gguf.py`) reads as the unsplit file, in any
//! order of its parts; a missing, repeated or foreign part is refused with a message naming it.
use pollster::block_on;

use crate::common::tiny::{GGUF as TINY, SPLIT as PARTS};
use decoding_playground::model::gguf::split::GgufParts;
use decoding_playground::model::gguf::{GgufHeader, GgufReader};
use decoding_playground::model::LanguageModel;
use decoding_playground::{Error, TractModel};

fn join(parts: &[&'static [u8]]) -> decoding_playground::Result<GgufParts<&'static [u8]>> {
    GgufParts::join(parts.to_vec())
}

fn refused(parts: &[&'static [u8]]) -> String {
    match join(parts) {
        Ok(_) => panic!("{} parts were joined, expected a refusal", parts.len()),
        Err(Error::Model(message)) => message,
        Err(other) => panic!("expected a model error, got {other:?}"),
    }
}

/// Every tensor of a GGUF stream, by name, with its bytes.
fn tensors(
    mut reader: GgufReader<impl prost::bytes::Buf>,
) -> Vec<(String, Vec<usize>, &'static str, Vec<u8>)> {
    let mut all = Vec::new();
    while let Some((info, bytes)) = reader.next_tensor().unwrap() {
        all.push((info.name, info.dims, info.ggml_type.name(), bytes));
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn the_parts_read_as_the_unsplit_file_in_any_order() {
    let whole = GgufHeader::read(&mut &TINY[..]).unwrap();
    let expected = tensors(GgufReader::new(TINY).unwrap());
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let joined = join(&order.map(|i| PARTS[i])).unwrap();
        // The metadata is the first part's, without the split keys; it is the whole file's.
        assert_eq!(joined.header().metadata, whole.metadata, "order {order:?}");
        assert_eq!(
            tensors(GgufReader::new(joined).unwrap()),
            expected,
            "order {order:?}"
        );
    }
}

#[test]
fn a_split_model_gives_the_unsplit_models_logits() {
    let ids = [1, 42, 7, 300, 12];
    let logits = |gguf: GgufParts<&'static [u8]>| {
        let (mut model, _) = TractModel::from_gguf(gguf).unwrap();
        block_on(model.prefill_all_logits(&ids)).unwrap()
    };
    let (mut whole, _) = TractModel::from_gguf(TINY).unwrap();
    let expected = block_on(whole.prefill_all_logits(&ids)).unwrap();
    assert_eq!(logits(join(&PARTS).unwrap()), expected);
    // One unsplit file passes through the same joiner unchanged.
    assert_eq!(logits(join(&[TINY]).unwrap()), expected);
}

#[test]
fn a_missing_part_is_named() {
    assert_eq!(
        refused(&[PARTS[0]]),
        "this is part 1 of a GGUF split into 3: give all 3 parts (name-00001-of-00003.gguf and the rest)"
    );
    assert_eq!(
        refused(&[PARTS[0], PARTS[2]]),
        "2 files for a GGUF split into 3 parts: give all 3, each once"
    );
}

#[test]
fn a_repeated_part_is_named() {
    assert_eq!(
        refused(&[PARTS[0], PARTS[1], PARTS[1]]),
        "part 2 of 3 is given twice"
    );
}

#[test]
fn a_foreign_part_is_refused() {
    assert_eq!(
        refused(&[PARTS[0], TINY, PARTS[2]]),
        "file 2 is not a part of a split GGUF (it has no `split.count`)"
    );
    assert_eq!(
        refused(&[TINY, TINY]),
        "2 .gguf files, none a part of a split model: give one file, or every part of one split model"
    );
    // A part of a model split otherwise: another count, or another number of tensors.
    let count4 = with_value(PARTS[2], "split.count", &4u16.to_le_bytes());
    assert_eq!(
        refused(&[PARTS[0], PARTS[1], count4]),
        "file 1 is a part of a GGUF split into 3, file 3 of one split into 4: the parts are not of one model"
    );
    let tensors21 = with_value(PARTS[1], "split.tensors.count", &21i32.to_le_bytes());
    assert_eq!(
        refused(&[PARTS[0], tensors21, PARTS[2]]),
        "part 2 says the model has 21 tensors, part 1 20: the parts are not of one model"
    );
    // All parts agree on 21, but hold 20.
    let all21 = [PARTS[0], PARTS[1], PARTS[2]]
        .map(|p| with_value(p, "split.tensors.count", &21i32.to_le_bytes()));
    assert_eq!(
        refused(&all21),
        "the parts hold 20 tensors, but the model has 21 (`split.tensors.count`)"
    );
    let number9 = with_value(PARTS[1], "split.no", &8u16.to_le_bytes());
    assert_eq!(
        refused(&[PARTS[0], number9, PARTS[2]]),
        "a file says it is part 9 of 3"
    );
}

#[test]
fn a_broken_part_is_named() {
    let message = refused(&[PARTS[0], &PARTS[1][..100], PARTS[2]]);
    assert!(
        message.starts_with("file 2 of 3: the header claims 8 tensors"),
        "{message}"
    );
    // A part whose data is cut short, even by one byte (less than the padding between parts):
    // the joiner names the part and the tensor.
    for cut in [1, 64] {
        let short = |i: usize| &PARTS[i][..PARTS[i].len() - cut];
        let message = refused(&[PARTS[0], short(1), PARTS[2]]);
        assert!(
            message.starts_with("part 2: the file ends inside tensor `blk.1.attn_k.weight`"),
            "{message}"
        );
        let message = refused(&[PARTS[0], PARTS[1], short(2)]);
        assert!(
            message.starts_with("part 3: the file ends inside tensor `output_norm.weight`"),
            "{message}"
        );
        let message = refused(&[&TINY[..TINY.len() - cut]]);
        assert!(
            message.starts_with("the file ends inside tensor `output_norm.weight`"),
            "{message}"
        );
    }
}

/// `bytes` (a committed part, leaked: the test's own copy) with the value of metadata `key`
/// (of `value.len()` bytes) replaced.
fn with_value(bytes: &[u8], key: &str, value: &[u8]) -> &'static [u8] {
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(key.as_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the key is in the part")
        + needle.len()
        + 4;
    let mut copy = bytes.to_vec();
    copy[at..at + value.len()].copy_from_slice(value);
    Box::leak(copy.into_boxed_slice())
}
