"""Record real Prometheus answers for the client tests: ``python -m tests.prometheus.record_answers``.

Starts the ``prometheus`` binary (LocalPrometheus), asks it queries that produce each kind of answer
Flagger's reader must handle, and writes status + body to ``answers/<case>.json``. The files are committed;
the tests serve them from a local HTTP server, so they run without the binary.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from canarylab.prometheus import LocalPrometheus, free_port

ANSWERS = Path(__file__).resolve().parent / "answers"

CASES = {
    "vector": "vector(99.5)",
    "empty": "absent(vector(1))",
    "nan": "vector(0) / vector(0)",
    "matrix": "vector(1)[30s:10s]",
    "several": 'label_replace(vector(1), "a", "x", "", "") or label_replace(vector(2), "a", "y", "", "")',
    "bad_data_400": "sum(",
    "execution_422": ('label_replace(vector(1), "a", "x", "", "") + on() '
                      '(label_replace(vector(1), "b", "1", "", "") or label_replace(vector(2), "b", "2", "", ""))'),
}


async def main() -> None:
    ANSWERS.mkdir(exist_ok=True)
    async with LocalPrometheus([f"127.0.0.1:{free_port()}"]) as prom, httpx.AsyncClient() as client:
        version = (await client.get(f"{prom.url}/api/v1/status/buildinfo")).json()["data"]["version"]
        for case, query in CASES.items():
            response = await client.get(f"{prom.url}/api/v1/query", params={"query": query})
            record = {"prometheus": version, "query": query, "status": response.status_code,
                      "reason": response.reason_phrase, "body": response.text}
            (ANSWERS / f"{case}.json").write_text(json.dumps(record, indent=2) + "\n")
            print(f"{case:14} {response.status_code} {response.text[:100]}")


if __name__ == "__main__":
    asyncio.run(main())
