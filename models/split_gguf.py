"""Splits the tiny model's GGUF into the parts llama.cpp's gguf-split writes, with gguf-py's own
splitting writer (an implementation independent of ours): models/tiny/split/model-0000N-of-00003.gguf.
The first part holds the metadata; every part holds `split.no` (from 0), `split.count` and
`split.tensors.count`, and its own tensor infos and data. Read by crate/tests/native/gguf_split.rs
and served to the page's end-to-end tests (tests/e2e/url.test.mjs).

    models/.venv/bin/python models/split_gguf.py
"""

from pathlib import Path

from gguf import GGUFReader, GGUFValueType, GGUFWriter

TINY = Path(__file__).resolve().parent / "tiny"
# 19 tensors in parts of at most 8: three parts (8, 8, 3).
MAX_TENSORS = 8


def main() -> None:
    reader = GGUFReader(TINY / "model.gguf")
    out = TINY / "split"
    out.mkdir(exist_ok=True)
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(out / "model.gguf", arch, split_max_tensors=MAX_TENSORS)
    for key, field in reader.fields.items():
        # The GGUF.* fields are the header's counts; the writer adds the architecture itself.
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        sub_type = field.types[-1] if field.types[0] == GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type)
    for tensor in reader.tensors:
        writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data)
    writer.close()


if __name__ == "__main__":
    main()
