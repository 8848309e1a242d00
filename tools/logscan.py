"""What the harness reads in the logs of a run: leaked secrets, Odoo's errors and failing tests.

Standard library only, like tools/devenv.py; tests/pure/test_logscan.py tests it.
"""

import itertools
import re
from pathlib import Path

# What must never reach a log. A masked key (*****-*****-*****-*****-ABCDE) and "Bearer ***" do not
# match. The simulator's certificate passwords start with "simpw-", so a leaked one is found.
SECRETS = {
    "a Microsoft product key": re.compile(r"(?<![\w-])[A-Z0-9]{5}(?:-[A-Z0-9]{5}){4}(?![\w-])"),
    "a bearer token": re.compile(r"\bBearer\s+(?!\*)[\w.~+/-]{16,}"),
    "a JWT": re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\."),
    "a certificate password": re.compile(r"\bsimpw-[\w-]{4,}"),
}


def find_secrets(text):
    """(line number, what) for each line of text that holds a secret; never the secret itself."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        found += [(number, what) for what, pattern in SECRETS.items() if pattern.search(line)]
    return found


def leak_report(paths):
    """One line naming the first secret found in the files (file:line, and how many more), or ''."""
    found = [(p, *hit) for p in map(Path, paths) for hit in find_secrets(read(p))]
    if not found:
        return ""
    path, line, what = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"{what} is in {path}:{line}{more}; no log may hold one"


def read(path):
    return Path(path).read_text(errors="replace") if Path(path).exists() else ""


def last_error(path):
    """The last line of an Odoo log that names an error, for a one-line message."""
    errors = [x for x in read(path).splitlines() if re.search(r" (ERROR|CRITICAL) |Error:", x)]
    return (errors[-1].strip()[:300] if errors else "no error line in the log") + f" (log: {path})"


def summary(path):
    """The lines of an Odoo runner's log worth showing: errors and the tests' statistics."""
    keep = re.compile(r" (ERROR|CRITICAL) |tests when loading database|post-tests in")
    return [line for line in read(path).splitlines() if keep.search(line)]


# "... ERROR db odoo.addons.sale.tests.test_x: FAIL: TestX.test_y" (also "ERROR: ...", subtests, and
# "ERROR: setUpClass (odoo.addons.sale.tests.test_x.TestX)" when a class could not be set up).
_FAILURE = re.compile(r"^\S+ \S+ \d+ ERROR \S+ (\S+): (?:FAIL|ERROR): (.+)$", re.M)
_HOLDER = re.compile(r"(\w+) \(odoo\.addons\.(\w+)\.[\w.]*?(\w+)\)")


def failing_tests(text):
    """The ids ("module Class.method") of the tests an Odoo runner's log reports as failed."""
    ids = []
    for logger, description in _FAILURE.findall(text):
        what = description.removeprefix("Subtest ")
        holder = _HOLDER.match(what)
        if holder:
            test_id = f"{holder[2]} {holder[3]}.{holder[1]}"
        else:
            module = re.match(r"odoo\.addons\.(\w+)", logger)
            test_id = f"{module[1] if module else logger} {what.split()[0]}"
        if test_id not in ids:
            ids.append(test_id)
    return ids


def pytest_failures(text):
    """The ids of the tests pytest's short summary reports as failed or in error, without its
    messages ("FAILED pure/test_x.py::test_y - assert ..." gives "pure/test_x.py::test_y")."""
    return re.findall(r"^(?:FAILED|ERROR) (\S+)", text, re.M)


def is_known(test_id, known):
    """Whether known (lines "module Class.method  # why", or just the method) lists test_id."""
    module, test = test_id.split(" ", 1)
    names = {(module, name) for name in (test, *test.split("."))}
    return any(tuple(line.split("#")[0].split()) in names for line in known.splitlines())


# "2026-01-01 10:00:00,000 42 ERROR db odoo.sql_db: bad query: ..." (and CRITICAL lines).
_ERROR_LINE = re.compile(r"^\S+ \S+ \d+ (?:ERROR|CRITICAL) \S+ ([\w.]+):", re.M)
_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):", re.M)
# On a standard error, anywhere in a line: two writers' output may be interleaved there.
_ANY_TRACEBACK = re.compile(r"Traceback \(most recent call last\):")


def error_counts(paths):
    """{path: (ERROR or CRITICAL lines, Traceback lines, {logger: ERROR lines})} of Odoo logs:
    what an operator watching them would see. Loggers only, never the messages (a message may
    hold data)."""
    counts = {}
    for path in map(Path, paths):
        text = read(path)
        loggers = {}
        for logger in _ERROR_LINE.findall(text):
            loggers[logger] = loggers.get(logger, 0) + 1
        counts[path] = (sum(loggers.values()), len(_tracebacks(path).findall(text)), loggers)
    return counts


# Odoo's own ERROR lines that a benchmark may meet, and why each is not the addon's fault; a
# benchmark names the kinds it expects (error_report's ``expected``), every other line counts.
# Matched on the whole entry (its line and the lines under it, the traceback included).
EXPECTED = {
    # The soak kills its servers on purpose: Odoo's cron runner logs this when three runs in a
    # row of a cron never ended (odoo/addons/base/models/ir_cron.py).
    "cron_killed": (
        re.compile(r" odoo\.addons\.base\.models\.ir_cron: Job '[^\n]*' \(\d+\) timed out"),
        "Odoo's cron runner: a cron whose server the soak killed in three runs in a row",
    ),
    # Two payments posted at once in a fresh database: Odoo's payment post-processing gives both
    # the journal's first payment number (P<journal>/<year>/00001); the second fails on Odoo's
    # unique index (its `bad query` line), and /payment/status/poll catches it, logs it and asks
    # the page to poll again.
    "first_payment_number": (
        re.compile(
            r"account_move_unique_name\"\s+DETAIL:\s+Key \(name, journal_id\)="
            r"\(P[A-Z0-9]+/\d{4}/0*1, \d+\) already exists"
        ),
        "Odoo's payment post-processing giving two payments the journal's first number at once",
    ),
    # A server's standard error (its uncaught thread exceptions): Odoo's threaded server stops
    # (ThreadedServer.stop closes every database connection) while its idle cron thread waits on
    # its own; the thread's exception is printed as the interpreter exits, which stops it after
    # the first frame. Only a traceback of one of Odoo's cron threads, cut short at the end of
    # the file (no exception line), matches: one that goes on, or another thread's, counts.
    "cron_thread_at_stop": (
        re.compile(
            r"\AException in thread odoo\.service\.cron\.cron\d+:\n"
            r"Traceback \(most recent call last\):\n"
            r"(?:  File [^\n]*\n?(?:    [^\n]*\n?)?)*\Z"
        ),
        "Odoo's threaded server stopped by the benchmark: an idle cron thread's exception, cut "
        "short on its standard error by the interpreter's exit",
    ),
}

_ENTRY_START = re.compile(r"^\S+ \S+ \d+ [A-Z]+ ", re.M)
_THREAD_EXCEPTION = re.compile(r"^Exception in thread ", re.M)


def error_entries(text, stderr=False):
    """The ERROR and CRITICAL entries of an Odoo log: each its line and the lines under it. Of a
    server's standard error (``stderr``): each uncaught thread exception, to the next one or the
    end of the file."""
    if stderr:
        starts = [m.start() for m in _THREAD_EXCEPTION.finditer(text)] + [len(text)]
        return [text[begin:end] for begin, end in itertools.pairwise(starts)]
    starts = [m.start() for m in _ENTRY_START.finditer(text)] + [len(text)]
    entries = []
    for begin, end in itertools.pairwise(starts):
        entry = text[begin:end]
        if _ERROR_LINE.match(entry):
            entries.append(entry)
    return entries


# A server's standard error beside its log (bench/cluster.py): what the log misses, such as a
# thread's uncaught exception (Python prints it there, not in Odoo's log).
STDERR_SUFFIX = ".stderr.log"


def _is_stderr(path):
    return path.name.endswith(STDERR_SUFFIX)


def _tracebacks(path):
    """What counts as a traceback in this file: at a line's start in an Odoo log, anywhere on a
    standard error (two writers' output may be interleaved there). The count and the tally of
    the expected kinds use the same rule, so an expected traceback is one the count saw."""
    return _ANY_TRACEBACK if _is_stderr(path) else _TRACEBACK


def error_report(paths, what, expected=()):
    """Lines saying how many ERROR and Traceback lines the Odoo logs of ``what`` (and the
    servers' standard errors, ``*.stderr.log``) hold, and how many of them are none of the
    ``expected`` kinds (of EXPECTED), against the goal of no unexpected one; (the lines,
    whether the goal is met)."""
    counts = error_counts(paths)
    stderrs = sum(_is_stderr(path) for path in counts)
    files = f"{len(counts) - stderrs} Odoo logs"
    if stderrs:
        files += f" and {stderrs} standard errors"
    errors = sum(count[0] for count in counts.values())
    tracebacks = sum(count[1] for count in counts.values())
    known = {}  # kind: [ERROR lines, Traceback lines]
    for path in counts:
        for entry in error_entries(read(path), stderr=_is_stderr(path)):
            kind = next((k for k in expected if EXPECTED[k][0].search(entry)), None)
            if kind:
                tally = known.setdefault(kind, [0, 0])
                tally[0] += bool(_ERROR_LINE.match(entry))
                tally[1] += len(_tracebacks(path).findall(entry))
    unexpected = errors - sum(x[0] for x in known.values())
    unexpected_tracebacks = tracebacks - sum(x[1] for x in known.values())
    verdict = "met" if not unexpected and not unexpected_tracebacks else "MISSED"
    lines = [
        f"{what}: {errors} ERROR lines, {tracebacks} Traceback lines in {files}; unexpected: "
        f"{unexpected} ERROR, {unexpected_tracebacks} Traceback (goal 0: {verdict})"
    ]
    for kind, (count, traces) in sorted(known.items()):
        lines.append(f"  expected: {count} ERROR, {traces} Traceback: {EXPECTED[kind][1]}")
    for path, (count, traces, loggers) in sorted(counts.items()):
        if count or traces:
            named = ", ".join(f"{logger} {n}" for logger, n in sorted(loggers.items()))
            lines.append(f"  {path.name}: {count} ERROR ({named or 'none'}), {traces} Traceback")
    return lines, verdict == "met"
