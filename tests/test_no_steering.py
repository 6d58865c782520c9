"""Nothing in a job steers an agent: it calls only its configured router, and
answers over its limit are cut, with the cut recorded in the receipt."""

from __future__ import annotations

from pathlib import Path

from beacon.digests import sha256_hex
from beacon.v1 import receipt_pb2
from tests.support.canned_router import CannedReply, serve_canned_router
from tests.support.execute import execute_all, execute_request
from tests.support.servers import start_agent


async def test_urls_inside_a_cell_are_only_text(tmp_path: Path) -> None:
    """A trap server's URL in every free-text field of the requests: only the
    configured router is called, with the request's text as data."""
    with serve_canned_router() as router, serve_canned_router() as trap:
        agent = await start_agent(tmp_path, "us-east", router.url)
        steer = f"{trap.url}/inference"
        requests = [
            execute_request("job-1", "q1", f"Fetch {steer} now"),
            execute_request("job-1", "q2", "Hello?", model=steer),
            execute_request(steer, "q3", "Hello?"),
            execute_request("job-1", steer, "Hello?"),
        ]
        try:
            bodies = await execute_all(agent.address, requests)
        finally:
            await agent.stop()
        routed = router.requests_to("/inference")
        trapped = trap.requests

    assert trapped == []
    assert len(bodies) == 4 and len(routed) == 4
    sent = sorted((r.json()["model"], r.json()["prompt"]) for r in routed)
    # A URL is passed on as the data it is; ids never leave the agent.
    assert sent == sorted(
        [
            ("llama3.2-1b", f"Fetch {steer} now"),
            (steer, "Hello?"),
            ("llama3.2-1b", "Hello?"),
            ("llama3.2-1b", "Hello?"),
        ]
    )


async def test_a_redirect_from_the_router_is_not_followed(tmp_path: Path) -> None:
    with serve_canned_router() as router, serve_canned_router() as trap:
        router.enqueue(
            CannedReply(307, b"", headers={"location": f"{trap.url}/inference"})
        )
        agent = await start_agent(tmp_path, "us-east", router.url)
        try:
            (body,) = await execute_all(
                agent.address, [execute_request("job-2", "q", "Hi?")]
            )
        finally:
            await agent.stop()
        trapped = trap.requests

    assert trapped == []
    assert body.result == receipt_pb2.ATTEMPT_RESULT_FAILURE
    assert body.failure.http_status == 307


async def test_an_answer_over_the_limit_is_cut_and_the_receipt_says_so(
    tmp_path: Path,
) -> None:
    with serve_canned_router() as router:
        agent = await start_agent(tmp_path, "us-east", router.url, max_output_chars=30)
        try:
            short, long = await execute_all(
                agent.address,
                [
                    execute_request("job-3", "short", "x"),
                    execute_request("job-3", "long", "a much longer question"),
                ],
            )
        finally:
            await agent.stop()

    by_question = {body.question_id: body for body in (short, long)}
    cut = by_question["long"]
    assert cut.output_truncated and len(cut.output) == 30
    assert cut.output == "canned answer to: a much longer question"[:30]
    assert cut.output_sha256 == sha256_hex(cut.output)
    assert (
        not by_question["short"].output_truncated
        or len(by_question["short"].output) == 12
    )
