#!/usr/bin/env python3
"""Reference captions of the tiny test BLIP, from transformers.

Writes tests/fixtures/vision/tiny_blip_reference.json, which the vision
tests compare voxd's captioner against (same files, same images):

    cargo run --release --example tiny_blip -- /tmp/tb ~/.cache/voxd/test-models/all-minilm-l6-v2/tokenizer.json
    python3 scripts/blip_reference.py /tmp/tb tests/fixtures/vision/tiny_blip_reference.json

Needs torch, transformers, pillow (pip). Not run by the tests or bootstrap:
the fixture is small and committed; rerun this when the generator changes.
"""
import json
import sys
from pathlib import Path

import torch
import transformers
from PIL import Image
from transformers import BlipForConditionalGeneration, PreTrainedTokenizerFast
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil


def main() -> None:
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    model, info = BlipForConditionalGeneration.from_pretrained(
        root / "model", output_loading_info=True
    )
    assert not info["missing_keys"], info["missing_keys"]
    model.eval()
    # PIL bicubic, 384×384, CLIP mean/std: BLIP base's preprocessor_config.
    processor = BlipImageProcessorPil()
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(root / "model" / "tokenizer.json"))
    bos, sep = model.config.text_config.bos_token_id, model.config.text_config.sep_token_id

    def caption(pixels, prompt):
        kwargs = {"pixel_values": pixels, "max_length": 20, "num_beams": 1, "do_sample": False}
        if prompt:
            kwargs["input_ids"] = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            ids = model.generate(**kwargs)[0].tolist()
        assert ids[0] == bos
        ids = ids[1:]
        if ids and ids[-1] == sep:
            ids = ids[:-1]
        return {"ids": ids, "caption": tokenizer.decode(ids, skip_special_tokens=True)}

    result = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "captions": [],
    }
    for path in sorted((root / "images").glob("*.png")):
        image = Image.open(path).convert("RGB")
        pixels = processor(image, return_tensors="pt").pixel_values
        entry = {"image": path.name, "width": image.width, "height": image.height}
        entry["plain"] = caption(pixels, None)
        entry["prompted"] = {"prompt": "a photo of", **caption(pixels, "a photo of")}
        # Every 16th pixel of every channel, to check preprocessing.
        entry["pixels_stride16"] = [round(v, 5) for v in pixels[0, :, ::16, ::16].flatten().tolist()]
        result["captions"].append(entry)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps([(c["image"], c["plain"]["caption"], c["prompted"]["caption"]) for c in result["captions"]], indent=1))


if __name__ == "__main__":
    main()
