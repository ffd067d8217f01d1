"""Prompt embeddings for DeepFloyd IF: T5 as IF encodes, loaded only for new prompts and freed after, a disk
cache that a second session hits, the course's .pth import, the "no text encoder" error, and the tokenizer as
DeepFloyd ships it (a bare spiece.model, which needs sentencepiece)."""

import gc
import io
import shutil
import warnings
import weakref

import pytest
import torch
from diffusers import IFPipeline
from tiny_if import WORDS, tiny_tokenizer, tiny_unet_config

from models.deepfloyd.denoiser import IFDenoiser
from models.deepfloyd.errors import IFMissingPackage, IFNoTextEncoder
from models.deepfloyd.loading import IFSpeedWarning, T5PromptEncoder, load_stage1
from models.deepfloyd.settings import IFSettings, has_package
from models.embeddings import DEFAULT_PROMPTS, PromptEmbeddings

pytestmark = pytest.mark.usefixtures("one_thread")


def encoder_for(folder):
    return T5PromptEncoder(str(folder), torch.device("cpu"), torch.float32)


def test_t5_encodes_as_ifpipeline_encode_prompt(folder):
    pipe = IFPipeline.from_pretrained(
        folder, safety_checker=None, watermarker=None, feature_extractor=None, low_cpu_mem_usage=False
    )
    prompts = ["A Photo of a DOG ", "", "an oil painting of a zebra"]  # case, spaces, an unknown word
    ours = encoder_for(folder)(prompts)
    theirs = pipe.encode_prompt(prompts, do_classifier_free_guidance=False, clean_caption=False)[0]
    assert ours.shape == (3, 77, 64)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_t5_is_loaded_only_for_new_prompts_and_the_disk_cache_is_hit_next_time(folder, tmp_path):
    encoder = encoder_for(folder)
    store = PromptEmbeddings(cache_dir=tmp_path, encoder=encoder, width=64)
    first = store.get_many(["a rocket ship"])[0]
    assert encoder.loads == 1
    assert set(store) == {"a rocket ship", *DEFAULT_PROMPTS}  # the defaults come along in the same T5 load
    assert len(list(tmp_path.glob("*.safetensors"))) == 3
    store.get_many(["a rocket ship", ""])
    assert encoder.loads == 1  # in memory

    lecture = encoder_for(folder)  # a new session on the same machine: a new store on the same folder
    again = PromptEmbeddings(cache_dir=tmp_path, encoder=lecture, width=64)
    assert torch.equal(again.get_many(["a rocket ship"])[0], first)
    assert lecture.loads == 0  # the encoder was not loaded again
    again.get_many(["a pencil", "a rocket ship"])
    assert lecture.loads == 1 and "a pencil" in PromptEmbeddings(cache_dir=tmp_path)


def test_t5_is_freed_after_encoding(folder):
    encoder = encoder_for(folder)
    refs = []
    load = encoder.load

    def spy():
        tokenizer, model = load()
        refs.append(weakref.ref(model))
        return tokenizer, model

    encoder.load = spy
    encoder(["a photo of a dog"])
    gc.collect()
    assert len(refs) == 1 and refs[0]() is None


def bare_spiece_copy(folder, tmp_path, spiece: bytes):
    """A copy of the folder whose tokenizer is a bare spiece.model, as DeepFloyd's hub repos ship it."""
    bare = tmp_path / "bare"
    shutil.copytree(folder, bare)
    for f in (bare / "tokenizer").iterdir():
        f.unlink()
    (bare / "tokenizer" / "spiece.model").write_bytes(spiece)
    (bare / "tokenizer" / "tokenizer_config.json").write_text('{"tokenizer_class": "T5Tokenizer", "extra_ids": 0}')
    return bare


@pytest.mark.skipif(has_package("sentencepiece"), reason="sentencepiece is installed: DeepFloyd's tokenizer loads")
def test_a_spiece_only_tokenizer_without_sentencepiece_is_explained(folder, tmp_path):
    bare = bare_spiece_copy(folder, tmp_path, b"\x0a\x00")
    with pytest.raises(IFMissingPackage, match=r"sentencepiece==0\.2\.3"):
        T5PromptEncoder(str(bare), torch.device("cpu"), torch.float32).load()  # transformers' own failure, explained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IFSpeedWarning)
        den = load_stage1(IFSettings(model=str(bare), device="cpu", cache_dir=str(tmp_path / "cache")))
    assert den.embeddings.encoder is None  # known not to load: prompts come from the cache or a .pth
    with pytest.raises(IFNoTextEncoder, match="sentencepiece"):
        den.encode(["a photo of a dog"])


@pytest.mark.skipif(not has_package("sentencepiece"), reason="needs sentencepiece")
def test_a_spiece_only_tokenizer_with_sentencepiece_loads(folder, tmp_path):
    import sentencepiece

    spiece = io.BytesIO()  # a real SentencePiece model (T5's ids: <pad> 0, </s> 1, <unk> 2), trained on the spot
    sentences = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 5
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=spiece,
        vocab_size=len(tiny_tokenizer()),
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    bare = bare_spiece_copy(folder, tmp_path, spiece.getvalue())
    encoder = T5PromptEncoder(str(bare), torch.device("cpu"), torch.float32)
    assert encoder(["a photo of a dog"]).shape == (1, 77, 64)


def test_the_course_pth_imports_and_needs_no_encoder(tmp_path):
    g = torch.Generator().manual_seed(0)
    course = {p: torch.randn(1, 77, 64, generator=g).half() for p in ("", "a high quality photo", "a pencil")}
    torch.save(course, tmp_path / "prompt_embeds_dict.pth")
    store = PromptEmbeddings(cache_dir=tmp_path / "cache", width=64)
    assert store.import_pth(tmp_path / "prompt_embeds_dict.pth") == sorted(course)
    denoiser = IFDenoiser(_tiny_unet(), store)
    cond = denoiser.encode(["a pencil", ""])
    assert cond.shape == (2, 77, 64) and cond.dtype == torch.float32
    assert torch.equal(cond[0], course["a pencil"][0].float())
    assert set(PromptEmbeddings(cache_dir=tmp_path / "cache")) == set(course)  # persisted for the next session


def test_bad_pth_files_are_refused_without_running_their_code(tmp_path):
    store = PromptEmbeddings(width=64)
    torch.save({"a pencil": torch.randn(1, 77, 32)}, tmp_path / "narrow.pth")
    with pytest.raises(ValueError, match="width 32.*takes 64"):
        store.import_pth(tmp_path / "narrow.pth")
    torch.save([torch.randn(77, 64)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="dict from prompt text to tensor"):
        store.import_pth(tmp_path / "list.pth")
    torch.save({"a pencil": torch.randn(2, 77, 64)}, tmp_path / "batch.pth")
    with pytest.raises(ValueError, match=r"\(L, D\) or \(1, L, D\)"):
        store.import_pth(tmp_path / "batch.pth")
    torch.save({"a pencil": Trap()}, tmp_path / "trap.pth")
    with pytest.raises(ValueError, match="not a torch file of plain tensors"):
        store.import_pth(tmp_path / "trap.pth")
    assert TRIGGERED == []  # weights_only: the pickled call never ran
    with pytest.raises(FileNotFoundError, match="course's .pth"):
        store.import_pth(tmp_path / "missing.pth")
    assert len(store) == 0


def test_an_unknown_prompt_without_encoder_is_a_value_error_naming_the_fix():
    g = torch.Generator().manual_seed(0)
    denoiser = IFDenoiser(
        _tiny_unet(), {"a photo": torch.randn(1, 7, 64, generator=g), "": torch.randn(1, 7, 64, generator=g)}
    )
    assert denoiser.encode(["a photo", ""]).shape == (2, 7, 64)
    with pytest.raises(ValueError, match=r"'a dog'.*prompts with embeddings: '', 'a photo'.*Fix: import") as info:
        denoiser.encode(["a photo", "a dog"])
    assert isinstance(info.value, IFNoTextEncoder)


def test_a_damaged_or_foreign_cache_file_is_ignored(tmp_path):
    store = PromptEmbeddings(cache_dir=tmp_path, width=64)
    store.add("a pencil", torch.randn(77, 64))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    assert list(PromptEmbeddings(cache_dir=tmp_path)) == ["a pencil"]
    store._path("a pencil").write_bytes(b"cut short by a crash")
    encoded = []
    fresh = PromptEmbeddings(
        cache_dir=tmp_path, width=64, encoder=lambda ps: encoded.extend(ps) or torch.ones(len(ps), 77, 64)
    )
    assert torch.equal(fresh.get_many(["a pencil"])[0], torch.ones(77, 64))  # encoded again, and the file rewritten
    assert encoded == ["a pencil", *DEFAULT_PROMPTS]
    assert torch.equal(PromptEmbeddings(cache_dir=tmp_path)["a pencil"], torch.ones(77, 64))


TRIGGERED = []


def _trigger():
    TRIGGERED.append("ran")


class Trap:
    def __reduce__(self):
        return (_trigger, ())


def _tiny_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(**tiny_unet_config(16))
