"""The `opsbot` command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from bot.eval_cli import eval_app
from bot.settings import EMBEDDED_MODEL, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from bot.deploys.requests import Requests
    from bot.store import Store
    from tools.deploy.mlflow_registry import MlflowRegistry
    from tools.deploy.registry import Registry

app = typer.Typer(
    help="opsbot: a chat-ops agent that answers from your runbooks, in Slack or a terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
llm_app = typer.Typer(help="Run a local OpenAI-compatible model server.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")
logs_app = typer.Typer(help="Mine log templates.", no_args_is_help=True)
app.add_typer(logs_app, name="logs")
db_app = typer.Typer(help="The store's schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
model_app = typer.Typer(
    help="The model registry (versions and what is live).", no_args_is_help=True
)
app.add_typer(model_app, name="model")
deploy_app = typer.Typer(help="Deploy requests and what they did.", no_args_is_help=True)
app.add_typer(deploy_app, name="deploy")
app.add_typer(eval_app, name="eval")
JsonOption = Annotated[bool, typer.Option("--json", help="JSON output.")]

IndexOption = Annotated[
    Path | None, typer.Option("--index", help="Index folder (default: OPSBOT_INDEX_DIR).")
]


def fail(message: str) -> typer.Exit:
    typer.echo(f"opsbot: {message}", err=True)
    return typer.Exit(2)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from None


@app.callback()
def main_callback() -> None:
    """Configure logging from settings before any command runs."""
    try:
        level = load_settings().log_level
    except SettingsError:
        level = "INFO"  # the command itself reports the bad setting in one line
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in (
        "httpx",
        "sentence_transformers",
        "faiss",
        "knowledge.build",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def index(
    path: Annotated[Path, typer.Argument(help="Folder of Markdown or text runbooks.")],
    index_dir: IndexOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild and re-embed everything, even if up to date.")
    ] = False,
) -> None:
    """Build the runbook index over PATH: chunks by heading, embeddings (only of changed
    files), FAISS, BM25, manifest."""
    from knowledge.embedder import EmbedderError
    from knowledge.index import build_index

    settings = settings_or_exit()
    out = index_dir or settings.index_dir
    try:
        manifest, built = build_index(
            path, out, settings.index.model, force=force, approx_above=settings.index.approx_above
        )
    except (FileNotFoundError, EmbedderError) as exc:
        raise fail(str(exc)) from None
    detail = f"{manifest.embedded} embedded, the rest reused; " if built else ""
    typer.echo(
        f"{'indexed' if built else 'up to date:'} {manifest.documents} runbooks "
        f"({manifest.chunks} sections; {detail}{manifest.index_type} index) "
        f"from {path} into {out} with {manifest.model}"
    )


@app.command()
def search(
    index_dir: IndexOption = None,
    k: Annotated[int, typer.Option("-k", help="Documents per query.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per query.")] = False,
    mode: Annotated[
        str, typer.Option("--mode", help="hybrid, or one retriever alone: dense or lexical.")
    ] = "hybrid",
) -> None:
    """Search the runbook index with queries read from stdin, one per line.

    A query that names an alert, quotes a runbook's title or carries its runbook_url gets
    that runbook first; the rest are ranked by dense and BM25 retrieval, fused. In hybrid
    mode a query nothing in the runbooks answers gets no hits (the runbook tool's cut)."""
    from knowledge.embedder import get_embedder
    from knowledge.index import IndexMismatchError, IndexMissingError, Mode, RunbookIndex
    from tools.runbooks import answering

    if mode not in ("hybrid", "dense", "lexical"):
        raise fail(f"--mode must be hybrid, dense or lexical, not {mode!r}")
    settings = settings_or_exit()
    try:
        runbooks = RunbookIndex(index_dir or settings.index_dir, get_embedder(settings.index.model))
    except (IndexMissingError, IndexMismatchError) as exc:
        raise fail(str(exc)) from None
    for line in sys.stdin:
        query = line.strip()
        if not query:
            continue
        hits = runbooks.search(query, k=k, mode=cast("Mode", mode))
        if mode == "hybrid":  # what the runbook tool quotes: nothing when nothing matches
            hits = answering(hits)[0]
        if as_json:
            record = {
                "query": query,
                "hits": [
                    {"doc": h.doc, "section": h.section, "score": h.score, "title": h.title}
                    for h in hits
                ],
            }
            typer.echo(json.dumps(record))
        else:
            typer.echo(f"? {query}")
            for rank, h in enumerate(hits, 1):
                typer.echo(f"  {rank}. {h.score:.3f}  {h.doc}  § {h.heading}")


@app.command()
def chat(
    once: Annotated[
        str | None, typer.Option("--once", help="Answer this one question and exit.")
    ] = None,
    thread: Annotated[
        str | None, typer.Option("--thread", help="Conversation name, to continue it later.")
    ] = None,
) -> None:
    """Talk to opsbot in the terminal; answers quote and cite runbook sections."""
    settings = settings_or_exit()
    thread_id = f"cli:{thread or uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_chat(settings, thread_id, once))
    except (KeyboardInterrupt, EOFError):
        typer.echo("")


async def _chat(settings: Settings, thread_id: str, once: str | None) -> None:
    from bot.agent.service import PendingApproval, open_agent
    from bot.store import Store

    store = Store(settings.database_url)
    user = os.environ.get("USER", "local")

    async def status(text: str) -> None:
        typer.secho(f"… {text}", fg=typer.colors.BRIGHT_BLACK, err=True)

    async with open_agent(settings) as agent:

        async def answer(question: str) -> None:
            store.audit(source="cli", user=user, action="chat", text=question)
            result = await agent.ask(thread_id, question, user=user, source="cli", on_status=status)
            if isinstance(result, PendingApproval):
                typer.echo(
                    f"{result.summary} waits for an approval (not by {result.requested_by})."
                )
            else:
                typer.echo(result.as_text())

        if once is not None:
            if not once.strip():
                raise fail("ask something, e.g. --once 'what should I check when pods crash-loop?'")
            await answer(once)
            return
        typer.echo("opsbot chat: ask about an incident or a procedure. Ctrl-D to leave.")
        while True:
            question = (await asyncio.to_thread(input, "you> ")).strip()
            if question.lower().lstrip("/:") in ("exit", "quit", "q"):
                return
            if question:
                await answer(question)
                typer.echo("")


@app.command()
def serve() -> None:
    """Run the bot: the Slack app over HTTP on /slack/events (OPSBOT_PORT), or Socket Mode
    with an app token; /alertmanager, /livez, /readyz and /metrics are served on the HTTP
    port either way."""
    settings = settings_or_exit()
    try:
        settings.require_slack()
    except SettingsError as exc:
        raise fail(str(exc)) from None
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    import uvicorn

    from bot.server import build_web_app

    socket_mode = settings.slack.app_token is not None
    web = build_web_app(settings, slack_events=not socket_mode)
    config = uvicorn.Config(
        web, host=settings.host, port=settings.port, log_level="info",
        timeout_graceful_shutdown=int(settings.workers.shutdown_grace) + 5,
    )  # fmt: skip
    server = uvicorn.Server(config)
    if not socket_mode:
        await server.serve()
        return
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    assert settings.slack.app_token is not None
    socket = AsyncSocketModeHandler(web.state.bolt, settings.slack.app_token.get_secret_value())
    await socket.connect_async()
    try:
        await server.serve()  # until SIGTERM; the lifespan drains the workers
    finally:
        await socket.close_async()


@llm_app.command("serve")
def llm_serve(
    model: Annotated[
        Path | None,
        typer.Option("--model", help="GGUF file (default: the packaged Gemma 3 270M base model)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    n_ctx: Annotated[int, typer.Option("--n-ctx", help="Context window in tokens.")] = 4096,
    print_command: Annotated[
        bool, typer.Option("--print-command", help="Print the server command and exit.")
    ] = False,
) -> None:
    """Serve a GGUF model through llama.cpp's OpenAI-compatible server (tool calls on)."""
    from bot.llm_server import LocalModelError, llama_server_command

    settings = settings_or_exit()
    try:
        command = llama_server_command(
            model, host=host, port=port, n_ctx=n_ctx, models_dir=settings.data_dir / "models"
        )
    except LocalModelError as exc:
        raise fail(str(exc)) from None
    if print_command:
        typer.echo(" ".join(command))
        return
    alias = command[command.index("--model_alias") + 1]
    typer.echo(
        f"serving {alias} at http://{host}:{port}/v1 — set OPSBOT_LLM_URL to use it", err=True
    )
    if alias == EMBEDDED_MODEL:
        typer.echo(
            "(a base model: it proves the wiring; answers still come from evidence)", err=True
        )
    raise typer.Exit(subprocess.call(command))


@logs_app.command("parse")
def logs_parse(
    file: Annotated[
        Path | None, typer.Argument(help="Log file (default: stdin).", show_default=False)
    ] = None,
    content_only: Annotated[
        bool, typer.Option("--content-only", help="Lines are messages without a header.")
    ] = False,
) -> None:
    """Print one JSON line per input line: template_id, template (and time, level)."""
    from tools.logs.mining import LogParser
    from tools.logs.sources import LogInputError, file_source

    lines: Iterator[str]
    if file is None or str(file) == "-":
        lines = (line.rstrip("\r\n") for line in sys.stdin)
    else:
        try:
            lines = file_source(file).lines()
        except LogInputError as exc:
            raise fail(str(exc)) from None
    for parsed in LogParser(content_only=content_only).parse_lines(lines):
        record = {"template_id": parsed.template_id, "template": parsed.template}
        if parsed.timestamp is not None:
            record["timestamp"] = parsed.timestamp.isoformat()
        if parsed.level:
            record["level"] = parsed.level
        typer.echo(json.dumps(record))


@app.command()
def rca(
    file: Annotated[Path, typer.Argument(help="Log file of the incident window.")],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Log file of a normal window.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    index_dir: IndexOption = None,
) -> None:
    """Root-cause analysis of a log file: what changed, ranked, with matching runbooks."""
    from knowledge.index import IndexMismatchError, IndexMissingError
    from tools.base import ToolContext
    from tools.logs.rca import analyse, to_markdown
    from tools.logs.sources import LogInputError, file_source
    from tools.logs.tool import lookup

    settings = settings_or_exit()
    ctx = ToolContext(
        index_dir=index_dir or settings.index_dir, embedding_model=settings.index.model
    )
    try:
        report = analyse(
            file_source(file),
            file_source(baseline) if baseline else None,
            lookup=lookup(ctx),
        )
    except LogInputError as exc:
        raise fail(str(exc)) from None
    try:
        _ = ctx.runbooks
    except (IndexMissingError, IndexMismatchError) as exc:
        report.notes.append(f"runbooks not searched: {exc}")
    typer.echo(json.dumps(report.as_json()) if as_json else to_markdown(report))


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Revision to upgrade to.")] = "head",
) -> None:
    """Bring the database's schema up to date (OPSBOT_DATABASE_URL; `opsbot serve` does this
    at start-up too, under a lock that replicas share)."""
    from bot.db import make_engine
    from bot.migrate import current_revision, upgrade

    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
    except Exception as exc:
        raise fail(f"could not migrate the database: {type(exc).__name__}: {exc}") from None
    typer.echo(f"database at revision {after}" + (f" (was {before})" if before != after else ""))


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the newest one this version knows."""
    from bot.db import make_engine
    from bot.migrate import current_revision, head_revision

    settings = settings_or_exit()
    typer.echo(f"current {current_revision(make_engine(settings.database_url))}, "
               f"head {head_revision()}")  # fmt: skip


def _deploy_parts(settings: Settings) -> tuple[Store, Registry | MlflowRegistry, Requests]:
    from bot.deploys.requests import Requests
    from bot.store import Store
    from tools.deploy.registry import open_registry

    store = Store(settings.database_url)
    registry = open_registry(settings.mlflow.tracking_uri, store.engine)
    return store, registry, Requests(store.engine)


@model_app.command("register")
def model_register(
    name: Annotated[str, typer.Argument(help="Model name, e.g. summarizer.")],
    version: Annotated[str, typer.Argument(help="Version, e.g. v3.")],
    uri: Annotated[str, typer.Argument(help="Local GGUF path, hf://…, s3://…, runs:/…, models:/…")],
    params: Annotated[
        list[str] | None, typer.Argument(help="Serving parameters: key=value …")
    ] = None,
) -> None:
    """Record a model version: where its weights are, their sha256 (a local file), its
    serving parameters, who registered it."""
    from tools.base import ToolError
    from tools.deploy.registry import parse_params

    store, registry, _ = _deploy_parts(settings_or_exit())
    user = os.environ.get("USER", "local")
    try:
        row = registry.register(name, version, uri, params=parse_params(params or []), by=user)
    except ToolError as exc:
        raise fail(str(exc)) from None
    store.audit(source="deploy", user=user, action="model register", text=f"{name} {version} {uri}")
    typer.echo(f"registered {row.model} {row.version} ({row.uri})")


@model_app.command("list")
def model_list(as_json: JsonOption = False) -> None:
    """Registered versions and where each is live."""
    _, registry, _ = _deploy_parts(settings_or_exit())
    live: dict[tuple[str, str], list[str]] = {}
    for row in registry.live():
        live.setdefault((row.model, row.version), []).append(row.env)
    for v in registry.versions():
        record = {"model": v.model, "version": v.version, "uri": v.uri, "sha256": v.sha256,
                  "params": v.params, "registered_by": v.registered_by,
                  "registered_at": v.registered_at.isoformat(),
                  "live_in": sorted(live.get((v.model, v.version), []))}  # fmt: skip
        if as_json:
            typer.echo(json.dumps(record))
        else:
            where = f"  live in {', '.join(record['live_in'])}" if record["live_in"] else ""
            typer.echo(f"{v.model} {v.version}  {v.uri}{where}")


@model_app.command("show")
def model_show(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """One model's versions, with their parameters, as JSON lines."""
    _, registry, _ = _deploy_parts(settings_or_exit())
    versions = registry.versions(name)
    if not versions:
        raise fail(f"no model {name!r} is registered")
    for v in versions:
        typer.echo(json.dumps({"model": v.model, "version": v.version, "uri": v.uri,
                               "sha256": v.sha256, "params": v.params}))  # fmt: skip


@deploy_app.command("status")
def deploy_status(
    model: Annotated[str, typer.Argument(help="Model name.")],
    env: Annotated[
        str | None, typer.Argument(help="Environment (default: the default one).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """What serves MODEL in ENV and the state of its latest request."""
    settings = settings_or_exit()
    _, registry, requests = _deploy_parts(settings)
    env = env or settings.deploy.default_env
    from bot.deploys.targets import make_target

    history = requests.history(model, env)
    live = registry.live_version(model, env)
    record = {
        "model": model, "env": env, "version": live,
        "address": make_target(settings, registry.engine).address(model, env) if live else None,
        "state": history[-1].state if history else None,
    }  # fmt: skip
    typer.echo(json.dumps(record) if as_json else " ".join(f"{k}={v}" for k, v in record.items()))


@deploy_app.command("history")
def deploy_history(
    model: Annotated[str | None, typer.Argument(help="Model name (default: all).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every deploy and rollback request, oldest first: one JSON line each with --json."""
    _, _, requests = _deploy_parts(settings_or_exit())
    for r in requests.history(model):
        approved = [a.user for a in requests.approvals(r)]  # on its plan (a changed plan voids)
        record = {"id": r.id, "action": r.action, "model": r.model, "version": r.version,
                  "from_version": r.from_version, "env": r.env, "state": r.state,
                  "requested_by": r.requested_by, "approved_by": approved,
                  "executions": r.executions, "created_at": r.created_at.isoformat()}  # fmt: skip
        if as_json:
            typer.echo(json.dumps(record))
        else:
            typer.echo(f"#{r.id} {r.action} {r.model} {r.from_version} -> {r.version} "
                       f"in {r.env}: {r.state} (asked by {r.requested_by})")  # fmt: skip


@app.command()
def audit(
    limit: Annotated[int, typer.Option("-n", help="How many records, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Who asked, approved, rejected, registered and deployed what, and when."""
    from bot.store import Store

    for r in Store(settings_or_exit().database_url).audit_log(limit=limit):
        record = {"at": r.at.isoformat(), "source": r.source, "user": r.user,
                  "action": r.action, "text": r.text, "channel": r.channel}  # fmt: skip
        typer.echo(json.dumps(record) if as_json else f"{r.at:%Y-%m-%d %H:%M} {r.user} "
                   f"{r.action}: {r.text}")  # fmt: skip


@app.command("slack-standin")
def slack_standin(
    port: Annotated[int, typer.Option(help="Port of the stand-in Web API.")] = 3001,
) -> None:
    """Run a local stand-in for Slack's Web API that prints every call the bot makes.

    Point the bot at it with OPSBOT_SLACK_API_URL=http://127.0.0.1:PORT/api/ and send it
    signed requests with `opsbot slack-send`.
    """
    from bot.slack.standin import serve_forever

    serve_forever(port=port)


@app.command("slack-send")
def slack_send(
    text: Annotated[
        str, typer.Argument(help="What follows /ops, e.g. 'ask why are pods crash-looping?'")
    ],
    url: Annotated[
        str, typer.Option(help="The bot's request URL.")
    ] = "http://127.0.0.1:3000/slack/events",
) -> None:
    """Send a correctly signed `/ops` command to a running bot (signing secret from settings)."""
    from bot.slack.standin import SignedSender

    settings = settings_or_exit()
    if settings.slack.signing_secret is None:
        raise fail("OPSBOT_SLACK_SIGNING_SECRET is needed to sign the request")
    sender = SignedSender(url, settings.slack.signing_secret.get_secret_value())
    import httpx

    try:
        response = sender.slash_command(text)
    except httpx.HTTPError as exc:
        raise fail(f"could not reach the bot at {url} ({type(exc).__name__})") from None
    typer.echo(f"HTTP {response.status_code} {response.text}")


@app.command("slack-click")
def slack_click(
    request_id: Annotated[
        int, typer.Argument(help="The deploy request's number (#N on its card).")
    ],
    user: Annotated[str, typer.Option("--user", help="Slack user id of who clicks.")] = "U0BOB",
    reject: Annotated[
        bool, typer.Option("--reject", help="Click Reject instead of Approve.")
    ] = False,
    button: Annotated[
        str | None,
        typer.Option(help="The button: approve, reject, promote or rollback (default approve)."),
    ] = None,
    url: Annotated[
        str, typer.Option(help="The bot's request URL.")
    ] = "http://127.0.0.1:3000/slack/events",
) -> None:
    """Click Approve (or Reject, Promote, Roll back) on a deploy request's card as USER, with
    a signed request, as Slack would: try the approval flow without a workspace."""
    import time

    import httpx

    from bot.slack.standin import SignedSender

    settings = settings_or_exit()
    if settings.slack.signing_secret is None:
        raise fail("OPSBOT_SLACK_SIGNING_SECRET is needed to sign the request")
    _, _, requests = _deploy_parts(settings)
    request = requests.get(request_id)
    if request is None:
        raise fail(f"no deploy request #{request_id}")
    button = button or ("reject" if reject else "approve")
    if button not in ("approve", "reject", "promote", "rollback"):
        raise fail(f"--button {button!r}: approve, reject, promote or rollback")
    action = f"deploy_{button}"
    payload = {
        "type": "block_actions", "user": {"id": user}, "channel": {"id": request.channel},
        "container": {"type": "message", "message_ts": request.card_ts,
                      "channel_id": request.channel, "thread_ts": request.thread_ts or None},
        "actions": [{"action_id": action, "type": "button", "action_ts": f"{time.time():.6f}",
                     "value": f"{request.id}:{request.plan_hash[:16]}"}],
    }  # fmt: skip
    sender = SignedSender(url, settings.slack.signing_secret.get_secret_value())
    try:
        response = sender.interaction(payload)
    except httpx.HTTPError as exc:
        raise fail(f"could not reach the bot at {url} ({type(exc).__name__})") from None
    typer.echo(f"HTTP {response.status_code} {response.text}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
