# lit_gan for GPU jobs. Build:  docker build -t lit-gan .
# (add --build-arg BAKE_INCEPTION=1 to bake the Inception FID weights into the image)
# Run:    docker run --gpus all --ipc=host -e WANDB_API_KEY -v "$PWD/runs:/workspace/runs" \
#           lit-gan fit --config configs/cifar10/wgan_gp.yaml
# The base image's torch and torchvision satisfy pyproject.toml, so `pip install .` keeps them
# (tests/integration/test_docker.py checks the pairing). torch 2.7.1 + CUDA 12.8: Volta to Blackwell GPUs.
FROM pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime

ARG BAKE_INCEPTION=0
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/home/gan \
    XDG_CACHE_HOME=/home/gan/.cache \
    TORCH_HOME=/home/gan/.cache/torch \
    LIT_GAN_CACHE=/home/gan/.cache/lit_gan \
    WANDB_DIR=/workspace/runs \
    WANDB_CACHE_DIR=/home/gan/.cache/wandb \
    WANDB_CONFIG_DIR=/home/gan/.config/wandb

RUN useradd --create-home --uid 1000 gan
WORKDIR /workspace

# The package first (its layer changes less often than configs).
COPY pyproject.toml README.md ./
COPY lit_gan ./lit_gan
RUN pip install --no-cache-dir . && lit-gan --help > /dev/null
COPY configs ./configs
COPY sweeps ./sweeps

RUN mkdir -p runs data "$XDG_CACHE_HOME" "$WANDB_CONFIG_DIR" && chown -R gan:gan /workspace /home/gan
USER 1000:1000

# Optional: the Inception-v3 FID weights in the image, for clusters without internet access.
RUN if [ "$BAKE_INCEPTION" = "1" ]; then \
      python -c "from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3 as F; F('inception-v3-compat', ['2048'])"; \
    fi

ENTRYPOINT ["lit-gan"]
CMD ["--help"]
