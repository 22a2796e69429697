"""``upload-to-cloudz`` / ``rvcloud upload``: send one finished archive file to the gateway.

The file is hashed in one streaming pass, skipped when the service already holds it
DONE with the same SHA-256, otherwise streamed in 1 MiB chunks read lazily from disk
(memory stays constant whatever the file size), and then followed until the service
has stored, converted and loaded it. ``upload_file`` is the reusable core; the entry
points add argument parsing and output.

Uploads resume (``send_with_retry``): when a stream is cut (UNAVAILABLE, a broken
connection) or runs out of time (DEADLINE_EXCEEDED), the retry asks the gateway
(``QueryWriteStatus``, answered by any replica from the blob store) how many bytes it
has committed and sends only the rest. A new run of the command asks too, for files
large enough to have been staged, so an interrupted ``upload`` re-run continues.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import grpc

from rvcloud.cli import retry
from rvcloud.cli.client import (
    CALL_TIMEOUT,
    CHUNK_SIZE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    Endpoint,
    GatewayClient,
    UsageError,
    is_not_found,
    is_transient,
    open_channel,
    rpc_code,
    rpc_error_exit,
    rpc_text,
)
from rvcloud.cli.config import DEFAULT_PROJECT, DEFAULT_TIMEOUT, add_config_argument, resolve
from rvcloud.cli.progress import Progress, make_progress
from rvcloud.cli.records import human_size, record_to_dict, rows_summary, status_name
from rvcloud.cli.retry import NO_RETRY, Retrier, RetryPolicy
from rvcloud.metadata.archive_path import archive_path_from_local, validate_key
from rvcloud.v1 import gateway_pb2

__all__ = ["DEFAULT_PROJECT", "DEFAULT_TIMEOUT", "UploadOutcome", "upload_file", "upload_hashed"]
# Polling starts fast after every change of stage (a small file's next stage is a
# fraction of a second away; the caller waits for DONE, so polling granularity is
# latency the user sees) and backs off gently so that a long conversion costs at most
# one status read a second per waiting client.
POLL_FIRST: Final = 0.1
POLL_GROWTH: Final = 1.5
POLL_MAX: Final = 1.0

EXAMPLE_ARCHIVE_PATH: Final = "route-views2/bgpdata/2014.05/UPDATES/updates.20140530.2200.bz2"

# A first attempt asks for committed bytes only for files above the gateway's default
# part size: smaller ones are never staged in parts (with the default configuration),
# and a backfill of many small files should not pay a round trip each. Retries always ask.
RESUME_QUERY_MIN_SIZE: Final = 16 * 1024 * 1024

# How long a retry waits for the service to finish with the cut stream before resuming
# (``resume_offset``), and how often it asks meanwhile.
RESUME_SETTLE: Final = 2.0
SETTLE_POLL: Final = 0.1

_DONE: Final = gateway_pb2.STATUS_DONE
_FAILED: Final = gateway_pb2.STATUS_FAILED

EXAMPLES: Final = """\
examples:
  upload-to-cloudz -d ingest.example.org:50051 \\
      -f /archive/route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2
  upload-to-cloudz -f ./updates.20240101.0000.bz2 -d https://ingest.example.org \\
      --filename route-views.amsix/bgpdata/2024.01/UPDATES/updates.20240101.0000.bz2
  upload-to-cloudz -f FILE -d localhost:50051 --no-wait --json

exit codes: 0 DONE (or already done, or stored with --no-wait); 1 FAILED or refused by
the service; 2 usage error or unreadable file; 3 service unreachable or timed out.
"""


@dataclass(slots=True)
class UploadOutcome:
    """How an upload ended: the last status record seen and how it was reached."""

    record: gateway_pb2.FileStatus
    already_done: bool = False
    timed_out: bool = False
    bytes_sent: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.record.status == _FAILED:
            return EXIT_FAILED
        # Not DONE and not timed out means --no-wait after the file was stored.
        return EXIT_UNAVAILABLE if self.timed_out else EXIT_OK


def file_digest(f: io.BufferedReader, progress: Progress) -> tuple[str, int]:
    """SHA-256 (hex) and size of an open file, read once in 1 MiB pieces."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    size = 0
    while n := f.readinto(view):
        h.update(view[:n])
        size += n
        progress.advance(size)
    return h.hexdigest(), size


@dataclass(slots=True)
class SendStats:
    """What ``send_with_retry`` did: Upload calls made, file bytes handed to gRPC, resume points."""

    attempts: int = 0
    bytes_sent: int = 0
    resumed_at: list[int] = field(default_factory=list)


def _upload_requests(
    f: io.BufferedReader,
    header: gateway_pb2.UploadHeader,
    offset: int,
    progress: Progress,
    stats: SendStats | None = None,
) -> Iterator[gateway_pb2.UploadRequest]:
    """Header, then bytes ``offset`` to ``header.size`` in 1 MiB chunks read on demand.

    gRPC asks for the next message only when the previous one has been handed to the
    transport, so at most a couple of chunks are in memory at any time. Sending only
    the hashed size keeps the upload consistent with the header if the file grows.
    """
    yield gateway_pb2.UploadRequest(header=header)
    f.seek(offset)
    sent = offset
    while sent < header.size:
        chunk = f.read(min(CHUNK_SIZE, header.size - sent))
        if not chunk:
            break  # the file shrank since hashing; the gateway reports the mismatch
        yield gateway_pb2.UploadRequest(chunk=chunk)
        sent += len(chunk)
        if stats is not None:
            stats.bytes_sent += len(chunk)
        progress.advance(sent)


def resume_offset(client: GatewayClient, header: gateway_pb2.UploadHeader, *, settle: float = 0.0) -> int:
    """Where an upload of ``header`` continues: the bytes the service has committed.

    ``header.size`` when the service already holds the whole file (the Upload then
    carries no chunk and gets already_done / already_in_progress); 0 for an empty file
    and for a gateway that predates resumable uploads (UNIMPLEMENTED). Other errors
    propagate, so a gateway that is down is retried like the upload itself.

    ``settle`` (seconds): while the service still reports a stream of this upload in
    progress -- normally our own cut stream, whose replica is still committing the
    bytes it received -- ask again for up to this long, so the resume starts after
    them. A replica that died keeps its lease until it expires; the resume then takes
    it over after ``settle`` (see ``send_from``'s ``resume``).
    """
    if header.size == 0:
        return 0
    deadline = time.monotonic() + settle
    while True:
        try:
            st = client.query_write_status(header.project, header.filename, header.sha256, header.size)
        except grpc.RpcError as e:
            if rpc_code(e) == grpc.StatusCode.UNIMPLEMENTED:
                return 0
            raise
        if st.complete:
            return header.size
        if not st.in_progress or time.monotonic() >= deadline:
            return min(max(st.committed_size, 0), header.size)
        time.sleep(SETTLE_POLL)


def send_from(
    client: GatewayClient,
    path: str,
    header: gateway_pb2.UploadHeader,
    offset: int,
    *,
    progress: Progress,
    timeout: float | None,
    resume: bool = False,
    stats: SendStats | None = None,
) -> gateway_pb2.UploadResponse:
    """One Upload call sending ``path``'s bytes from ``offset`` on, after ``header``.

    ``offset`` must be what ``resume_offset`` reported (the gateway answers ABORTED
    otherwise); ``resume`` marks the call as the continuation of this client's own
    interrupted upload, which takes over its receiving lease on the service. The
    progress counter starts at ``offset``.
    """
    if not 0 <= offset <= header.size:
        raise ValueError(f"offset {offset} outside the file of {header.size} bytes")
    sent_header = gateway_pb2.UploadHeader()
    sent_header.CopyFrom(header)
    sent_header.write_offset = offset
    sent_header.resume = resume
    if stats is not None:
        stats.attempts += 1
    with open(path, "rb") as f:
        progress.start("sending", header.size)
        if offset:
            progress.advance(offset)
        try:
            return client.upload(_upload_requests(f, sent_header, offset, progress, stats), timeout=timeout)
        finally:
            progress.finish()


def _rehash(path: str) -> tuple[str, int]:
    with open(path, "rb") as f:
        return file_digest(f, Progress())


def send_with_retry(
    client: GatewayClient,
    path: str,
    header: gateway_pb2.UploadHeader,
    *,
    retrier: Retrier,
    progress: Progress,
    timeout: float | None,
    stats: SendStats | None = None,
) -> gateway_pb2.UploadResponse:
    """Upload ``path`` under ``header``, retrying transient errors under ``retrier``'s policy.

    Every retry resumes: it asks the service for the committed bytes and sends the
    rest, taking over the interrupted upload's lease (``resume``). The first attempt
    asks too for files above ``RESUME_QUERY_MIN_SIZE`` (an earlier run may have been
    cut). ``timeout`` bounds each Upload call; a call that runs out of time keeps what
    it committed, so a retry continues rather than starting again.

    DATA_LOSS (size or SHA-256 mismatch on the service) is permanent unless the file
    changed since it was hashed: then ``header`` is updated in place to the new content
    and the upload is tried again, within the same budget. A resumed upload that fails
    the SHA-256 check is tried once more from byte 0 (the service discards the parts it
    resumed from: they were not this file).
    """
    stats = stats if stats is not None else SendStats()
    last_offset = 0
    restarted = False

    def retryable(e: grpc.RpcError) -> bool:
        nonlocal restarted
        if is_transient(e):
            return True
        if rpc_code(e) != grpc.StatusCode.DATA_LOSS:
            return False
        sha256, size = _rehash(path)
        if (sha256, size) == (header.sha256, header.size):
            if last_offset > 0 and not restarted:
                restarted = True
                progress.warn(f"{header.filename}: the resumed upload failed its check; sending it whole")
                return True
            return False  # the same bytes again would fail the same way
        progress.warn(f"{header.filename}: changed while uploading; sending the new content")
        header.sha256, header.size = sha256, size
        return True

    def on_retry(n: int, e: grpc.RpcError, pause: float) -> None:
        progress.warn(f"{header.filename}: {rpc_text(e)}; retry {n} in {pause:.1f} s")

    def attempt() -> gateway_pb2.UploadResponse:
        nonlocal last_offset
        retry = stats.attempts > 0
        if retry:
            offset = resume_offset(client, header, settle=RESUME_SETTLE)
        else:
            offset = resume_offset(client, header) if header.size > RESUME_QUERY_MIN_SIZE else 0
        if offset:
            stats.resumed_at.append(offset)
            if offset < header.size:
                progress.note(
                    f"{header.filename}: resuming at {human_size(offset)} of {human_size(header.size)} "
                    "(committed on the service)"
                )
        last_offset = offset
        return send_from(
            client,
            path,
            header,
            offset,
            progress=progress,
            timeout=timeout,
            resume=retry,
            stats=stats,
        )

    return retrier.call(attempt, on_retry=on_retry, retryable=retryable)


def _stage_line(record: gateway_pb2.FileStatus, seconds: float) -> str:
    if record.status == _DONE:
        return f"DONE  {rows_summary(record)} in {seconds:.1f} s"
    if record.status == _FAILED:
        return f"FAILED at stage {record.stage or '?'}"
    return record.stage or status_name(record)


def _wait_until_final(
    client: GatewayClient,
    record: gateway_pb2.FileStatus,
    *,
    progress: Progress,
    deadline: float,
    started: float,
    policy: RetryPolicy,
) -> tuple[gateway_pb2.FileStatus, bool]:
    """Poll GetFile until DONE or FAILED; returns the last record and whether time ran out.

    The file is safely stored by now, so a gateway restart during the wait should not
    turn into a failure: a run of transient errors is retried as long as ``policy``
    allows (counted from the first error of the run), then raised.
    """
    progress.note(f"  → {_stage_line(record, time.monotonic() - started)}")
    shown = (record.status, record.stage)
    delay = POLL_FIRST
    errors = 0
    first_error = 0.0
    while record.status not in (_DONE, _FAILED):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return record, True
        time.sleep(min(delay, remaining))
        try:
            record = client.get_file(record.project, record.filename, timeout=min(CALL_TIMEOUT, remaining))
        except grpc.RpcError as e:
            now = time.monotonic()
            errors, first_error = errors + 1, first_error if errors else now
            if (
                not is_transient(e)
                or now >= deadline
                or errors >= policy.attempts
                or now - first_error > policy.max_time
            ):
                raise
            delay = max(POLL_FIRST, policy.delay(errors))
            continue
        errors = 0
        if (record.status, record.stage) != shown:
            progress.note(f"  → {_stage_line(record, time.monotonic() - started)}")
            shown = (record.status, record.stage)
            delay = POLL_FIRST
        else:
            delay = min(delay * POLL_GROWTH, POLL_MAX)
    return record, False


def upload_file(
    client: GatewayClient,
    path: str,
    project: str,
    filename: str,
    *,
    wait: bool,
    progress: Progress,
    timeout: float,
    retrier: Retrier | None = None,
    convert: bool = True,
) -> UploadOutcome:
    """Upload ``path`` as ``filename`` of ``project`` and, if ``wait``, follow it to DONE/FAILED.

    Hashes the file, asks the service whether it already holds it DONE, then
    ``upload_hashed``. ``timeout`` bounds each phase that depends on the service: the
    upload call, and the wait for a final status (which ends with ``timed_out`` set,
    not an exception). Transient errors are retried under ``retrier`` (default: none).
    Raises OSError when the file cannot be read and grpc.RpcError for service errors.
    """
    retrier = retrier or Retrier(NO_RETRY)
    with open(path, "rb") as f:
        progress.start("hashing", os.fstat(f.fileno()).st_size)
        sha256, size = file_digest(f, progress)
        progress.finish()

    def lookup() -> gateway_pb2.FileStatus | None:
        try:
            return client.get_file(project, filename, timeout=min(CALL_TIMEOUT, timeout))
        except grpc.RpcError as e:
            if is_not_found(e):
                return None
            raise

    known = retrier.call(lookup)
    if known is not None and known.status == _DONE and known.sha256 == sha256:
        return UploadOutcome(known, already_done=True)
    return upload_hashed(
        client,
        path,
        project,
        filename,
        sha256,
        size,
        wait=wait,
        progress=progress,
        timeout=timeout,
        retrier=retrier,
        convert=convert,
    )


def upload_hashed(
    client: GatewayClient,
    path: str,
    project: str,
    filename: str,
    sha256: str,
    size: int,
    *,
    wait: bool,
    progress: Progress,
    timeout: float,
    retrier: Retrier,
    convert: bool = True,
) -> UploadOutcome:
    """Send a file whose SHA-256 and size are known, then (if ``wait``) follow it to DONE/FAILED.

    The reusable core of ``upload`` and ``backfill``/``watch`` (which learn the hash from
    their cache and ask CheckFiles instead of GetFile first). ``convert=False`` keeps
    only the raw file (DONE once stored).
    """
    header = gateway_pb2.UploadHeader(
        filename=filename, project=project, sha256=sha256, size=size, convert=convert
    )
    started = time.monotonic()
    stats = SendStats()
    reply = send_with_retry(
        client, path, header, retrier=retrier, progress=progress, timeout=timeout, stats=stats
    )
    seconds = time.monotonic() - started
    if reply.already_done:
        return UploadOutcome(reply.file, already_done=True)
    if reply.already_in_progress:
        progress.note(f"{filename}: the same content is already being processed; following it")
    else:
        rate = header.size / (1024 * 1024) / max(seconds, 1e-6)
        took = f"{seconds:.2f}" if seconds < 1 else f"{seconds:.1f}"
        resumed = (
            f"; resumed {len(stats.resumed_at)} time(s), {human_size(stats.bytes_sent)} sent"
            if stats.resumed_at
            else ""
        )
        progress.note(
            f"uploaded {filename}: {human_size(header.size)} in {took} s ({rate:,.1f} MiB/s{resumed})"
        )
    outcome = UploadOutcome(reply.file, bytes_sent=stats.bytes_sent, seconds=seconds)
    if wait:
        outcome.record, outcome.timed_out = _wait_until_final(
            client,
            reply.file,
            progress=progress,
            deadline=time.monotonic() + timeout,
            started=started,
            policy=retrier.policy,
        )
        outcome.seconds = time.monotonic() - started
    return outcome


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    """-d/--destination, --project, --ca and --config, shared by every command that talks to the gateway.

    Every default is None so that ``config.resolve`` can tell a flag from its absence
    and fall back to RVCLOUD_* variables, the config file, then the built-in default.
    """
    parser.add_argument(
        "-d",
        "--destination",
        dest="endpoint",
        metavar="ADDR",
        help="gateway address: HOST:PORT or grpc://HOST:PORT (plaintext), http://HOST[:PORT] "
        "(plaintext, port 80), https://HOST[:PORT] (TLS, port 443); default $RVCLOUD_ENDPOINT "
        "or endpoint in the config file",
    )
    parser.add_argument(
        "--project",
        help=f"archive project, e.g. routeviews or ris (default {DEFAULT_PROJECT})",
    )
    parser.add_argument(
        "--ca", metavar="PEM", help="CA certificates for https:// (default: the system roots)"
    )
    add_config_argument(parser)


def add_retry_arguments(parser: argparse.ArgumentParser) -> None:
    """How transient errors (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED) are retried."""
    group = parser.add_argument_group(
        "retries",
        "transient errors are retried with exponential backoff and full jitter; a retried upload "
        "resumes from the bytes the service has committed (a cut stream, a deadline)",
    )
    group.add_argument(
        "--retry-attempts",
        type=_positive_int,
        metavar="N",
        help=f"tries per call, the first included (default {retry.DEFAULT_ATTEMPTS}; 1 = no retry)",
    )
    group.add_argument(
        "--retry-initial",
        type=_positive_seconds,
        metavar="SECONDS",
        help=f"cap of the first backoff, doubled per retry (default {retry.DEFAULT_INITIAL:g})",
    )
    group.add_argument(
        "--retry-max-delay",
        type=_positive_seconds,
        metavar="SECONDS",
        help=f"largest backoff (default {retry.DEFAULT_MAX_DELAY:g})",
    )
    group.add_argument(
        "--retry-max-time",
        type=_positive_seconds,
        metavar="SECONDS",
        help=f"stop retrying a call after this long (default {retry.DEFAULT_MAX_TIME:g})",
    )


def add_upload_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``upload-to-cloudz`` and ``rvcloud upload``."""
    parser.add_argument(
        "-f", "--file", required=True, metavar="FILE", help="the finished MRT archive file to upload"
    )
    add_gateway_arguments(parser)
    parser.add_argument(
        "--filename",
        metavar="ARCHIVE_PATH",
        help="archive path to store the file under (default: FILE's path from the collector "
        "directory on, e.g. route-views.jinx/bgpdata/2014.05/RIBS/rib.20140530.2200.bz2)",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="return once the file is stored; do not wait for conversion and loading",
    )
    parser.add_argument(
        "--no-convert",
        action="store_true",
        help="keep only the raw file on the service: no conversion or loading (DONE once stored)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the final status record as one JSON object"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        help="bound on one send of the file (a send that runs out is retried, resuming where it "
        "stopped) and on the wait for DONE/FAILED; exit 3 when the retries or the wait run out "
        f"(default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or stage lines on stderr")
    add_retry_arguments(parser)


def _print_outcome(outcome: UploadOutcome, *, as_json: bool, endpoint: Endpoint, timeout: float) -> None:
    r = outcome.record
    if as_json:
        print(json.dumps({**record_to_dict(r), "already_done": outcome.already_done}))
    elif outcome.already_done:
        print(f"already done: {r.filename} ({rows_summary(r)}); nothing sent")
    elif r.status == _DONE:
        print(f"DONE {r.filename}: {rows_summary(r)}, {human_size(r.size)}, {outcome.seconds:.1f} s")
    elif r.status == _FAILED:
        print(f"FAILED {r.filename} at stage {r.stage or '?'}")
    elif outcome.timed_out:
        print(f"{status_name(r)} {r.filename}: still {r.stage or 'pending'} after waiting {timeout:g} s")
    else:
        print(f"stored {r.filename} ({human_size(r.size)}); conversion continues on the service")
    if r.status == _FAILED:
        print(f"error: {r.error or 'the service gave no reason'}", file=sys.stderr)
        for line in r.first_errors:
            print(f"  {line}", file=sys.stderr)
    elif r.status == _DONE and r.first_errors and not as_json:
        # DONE, but the decoder skipped or repaired something (a truncated file, damaged
        # records, a path that contradicts the content): the operator should know.
        skipped = sum(r.skipped_by_reason.values())
        print(
            f"warning: {len(r.first_errors)} problem(s) noted while converting ({skipped} skipped):",
            file=sys.stderr,
        )
        for line in r.first_errors[:5]:
            print(f"  {line}", file=sys.stderr)
    elif outcome.timed_out:
        print(
            f"error: timed out after {timeout:g} s; the service keeps working on the file. "
            f"Check later with: rvcloud status -d {endpoint} --project {r.project} {r.filename}",
            file=sys.stderr,
        )


def run_upload(args: argparse.Namespace) -> int:
    """Run an upload described by parsed ``add_upload_arguments`` options; returns the exit code."""
    try:
        settings = resolve(args)
        endpoint = settings.endpoint()
        project, timeout = settings.project, settings.timeout
        if not os.path.isfile(args.file):
            raise UsageError(
                f"{args.file}: no such file" if not os.path.exists(args.file) else f"{args.file}: not a file"
            )
        if not os.access(args.file, os.R_OK):
            raise UsageError(f"{args.file}: not readable")
        if os.path.getsize(args.file) == 0:
            # Not even a compressed empty stream: a dump that failed or is still being written.
            raise UsageError(f"{args.file}: empty file (0 bytes; still being written?); nothing uploaded")
        try:
            filename = validate_key(args.filename) if args.filename else archive_path_from_local(args.file)
        except ValueError as e:
            hint = "--filename: an archive path such as" if args.filename else "pass --filename, e.g."
            raise UsageError(f"{e}; {hint} {EXAMPLE_ARCHIVE_PATH}") from None
    except (UsageError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE

    progress = make_progress(args.quiet)
    try:
        with open_channel(endpoint, ca_file=settings.ca) as channel:
            outcome = upload_file(
                GatewayClient(channel, token=settings.token),
                args.file,
                project,
                filename,
                wait=not args.no_wait,
                progress=progress,
                timeout=timeout,
                retrier=Retrier(settings.retry_policy),
                convert=not args.no_convert,
            )
    except grpc.RpcError as e:
        progress.finish()
        return rpc_error_exit(e, endpoint)
    except OSError as e:
        progress.finish()
        print(f"error: cannot read {args.file}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        progress.finish()
        print(
            f"interrupted. The service keeps what it has received: run the same command again to "
            f"resume or to wait for it; `rvcloud status -d {endpoint} {filename}` shows where it is.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    _print_outcome(outcome, as_json=args.json, endpoint=endpoint, timeout=timeout)
    return outcome.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="upload-to-cloudz",
        description="Upload one finished RouteViews/RIS MRT archive file to the rvcloud ingest gateway "
        "and wait until it is stored, converted and loaded.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_upload_arguments(parser)
    return parser


def upload_to_cloudz_main(argv: list[str] | None = None) -> int:
    """Entry point of the ``upload-to-cloudz`` console script."""
    return run_upload(build_parser().parse_args(argv))
