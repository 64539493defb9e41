# mde-chatops: slim, non-root, with a health check. Build: docker build -t mde-chatops .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mde ./mde
COPY approvals ./approvals
COPY bot ./bot
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 mde
COPY --from=build /install /usr/local
USER mde
WORKDIR /home/mde
ENV HOST=0.0.0.0 PORT=3978 LOG_FORMAT=json
EXPOSE 3978
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3978/healthz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["mde-chatops"]
CMD ["serve"]
