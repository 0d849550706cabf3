"""Text-to-image generation with a diffusers pipeline."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from diffusers import AutoPipelineForText2Image, DiffusionPipeline
from diffusers.utils import logging as diffusers_logging
from PIL.Image import Image
from transformers.utils import logging as transformers_logging

from models.artifacts import png_artifact
from models.base import Artifact, CancelCheck, GenerationRequest, Generator, ProgressCallback
from models.device import pick_device, pick_dtype, random_seed, seeded_generator
from models.errors import GenerationCanceled, ModelLoadError
from models.loading import check_local_source
from models.params import ImageParams, Kind
from models.progress import BatchProgress, quiet_progress_bars, raise_if_canceled

# The smallest size every Stable-Diffusion-style pipeline accepts: enough to warm kernels up.
_WARMUP_PARAMS = ImageParams(width=64, height=64, steps=1, guidance_scale=0.0, seed=0)


# Pipelines are typed Any: to type checkers, diffusers' top-level names are placeholder classes.
def _load_pipeline(source: str, dtype: torch.dtype) -> Any:
    with warnings.catch_warnings():
        # Newer diffusers renamed torch_dtype to dtype; older ones accept only torch_dtype.
        warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
        # diffusers passes huggingface_hub an argument it has deprecated; nothing to act on.
        warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
        kwargs: dict[str, Any] = {}
        # Load no safety checker at all rather than loading one and switching it off: it is a
        # second CLIP model in GPU memory. Only pipelines that list one accept the argument.
        safety_checker = DiffusionPipeline.load_config(source).get("safety_checker")
        if safety_checker and safety_checker[0] is not None:
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        with quiet_progress_bars(diffusers_logging, transformers_logging):
            try:
                return AutoPipelineForText2Image.from_pretrained(
                    source, torch_dtype=dtype, **kwargs
                )
            except ValueError:
                # AutoPipeline knows only the text-to-image families it maps; others load as-is.
                return DiffusionPipeline.from_pretrained(source, torch_dtype=dtype, **kwargs)


class ImageGenerator(Generator[ImageParams]):
    kind: ClassVar[Kind] = Kind.IMAGE

    def __init__(self, source: str, device: str | None = None) -> None:
        super().__init__(source, device)
        self._pipe: Any = None
        self._device = pick_device(device)

    def load(self) -> None:
        check_local_source(self.source)
        try:
            pipe = _load_pipeline(self.source, pick_dtype(self._device, Kind.IMAGE))
        except Exception as exc:  # from_pretrained raises OSError, ValueError, hub errors...
            raise ModelLoadError(f"cannot load image model {self.source!r}: {exc}") from exc
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe.to(self._device)

    def warmup(self) -> None:
        self.generate([GenerationRequest("warmup", _WARMUP_PARAMS)])

    def generate(
        self,
        requests: Sequence[GenerationRequest[ImageParams]],
        *,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> list[list[Artifact]]:
        raise_if_canceled(should_cancel)
        # Requests whose params differ only in seed share one pipeline call: each image has
        # its own generator, so an image depends on its seed alone, not on its batch.
        batches: dict[ImageParams, list[int]] = {}
        for index, request in enumerate(requests):
            batches.setdefault(request.params.model_copy(update={"seed": None}), []).append(index)
        progress = BatchProgress(on_progress, sum(p.steps for p in batches))
        results: list[list[Artifact]] = [[] for _ in requests]
        for params, indices in batches.items():
            raise_if_canceled(should_cancel)
            batch = [requests[i] for i in indices]
            images = self._run_batch(batch, params, progress, should_cancel)
            for offset, index in enumerate(indices):
                start = offset * params.num_images
                chunk = images[start : start + params.num_images]
                results[index] = [png_artifact(image) for image in chunk]
            progress.finish_batch(params.steps)
        return results

    def _run_batch(
        self,
        batch: list[GenerationRequest[ImageParams]],
        params: ImageParams,
        progress: BatchProgress,
        should_cancel: CancelCheck | None,
    ) -> list[Image]:
        if self._pipe is None:
            raise RuntimeError("ImageGenerator.load() was not called")
        # Image k of a request seeded s uses seed s + k, so asking for more images keeps
        # the first ones unchanged.
        generators = []
        for request in batch:
            seed = request.params.seed if request.params.seed is not None else random_seed()
            generators += [
                seeded_generator(seed + k, self._device) for k in range(params.num_images)
            ]

        def on_step_end(
            pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]
        ) -> dict[str, Any]:
            if should_cancel is not None and should_cancel():
                # Raising skips the remaining steps and the VAE decode of a result nobody wants.
                raise GenerationCanceled("generation was canceled")
            progress.step(step + 1)
            return tensors

        negative = params.negative_prompt
        output = self._pipe(
            prompt=[r.prompt for r in batch],
            negative_prompt=[negative] * len(batch) if negative else None,
            width=params.width,
            height=params.height,
            num_inference_steps=params.steps,
            guidance_scale=params.guidance_scale,
            num_images_per_prompt=params.num_images,
            generator=generators,
            callback_on_step_end=on_step_end,
            output_type="pil",
        )
        return list(output.images)
