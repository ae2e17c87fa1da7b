"""`python -m tests.mockprovider --port 9100 [--no-record]`: serve the mock provider in the foreground."""

from __future__ import annotations

import argparse

from tests.mockprovider.server import run


def main() -> None:
    parser = argparse.ArgumentParser(description="Local mock LLM provider (OpenAI, Anthropic, Gemini formats)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--no-record", action="store_true", help="keep no request log (benchmarks: memory stays flat)")
    args = parser.parse_args()
    run(args.host, args.port, record=not args.no_record)


if __name__ == "__main__":
    main()
