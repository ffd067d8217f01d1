# Diffusion Lab's app server: the README's `streamlit run Home.py`, CPU torch; the runs folder and the model cache on
# volumes. Not built on the machines the lab was developed on (no Docker daemon there): docs/operating.md says so.
FROM python:3.11-slim

RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt requirements-cluster.txt ./
# the CPU build of torch first (PyPI's Linux wheel brings gigabytes of CUDA libraries); a GPU image installs the CUDA one
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -r requirements.txt
COPY . .

ENV DIFFUSION_LAB_RUNS=/srv/runs \
    DIFFUSION_LAB_CACHE=/srv/cache \
    HF_HOME=/srv/cache/huggingface
VOLUME ["/srv/runs", "/srv/cache"]
EXPOSE 8501
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=2)"
CMD ["streamlit", "run", "Home.py", "--server.headless", "true", "--server.port", "8501", "--server.address", "0.0.0.0"]
