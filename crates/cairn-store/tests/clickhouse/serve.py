"""Run a real ClickHouse server out of the chdb-core wheel, for tests.

Usage: python serve.py SITE_PACKAGES DATA_DIR

The working directory must hold config.xml (ports, listen_host, any
remote_servers): the embedded server reads it from there. The process serves
HTTP and the native protocol until it is killed or its stdin closes.

Why it is done this way:
- Everything happens in ONE query call. A second call in the same process
  fails ("EventNotifier is initialized twice"), and the listeners serve only
  while a query runs: sleeping in Python after START LISTEN does not serve.
  So the call opens the listeners, then runs a query that sleeps ~95 years,
  one row at a time.
- Hence no `import chdb`: the package's __init__ runs a query of its own
  (SELECT version()). The extension module is loaded straight from its file
  instead, with RTLD_DEEPBIND as that __init__ does (its pybind11 stubs must
  take operator new/delete from the library's own jemalloc).
"""

import importlib.util
import os
import sys
import threading


def exit_when_stdin_closes():
    # The test holds the write end of our stdin. When the test process ends,
    # however it ends, the pipe closes and the server goes with it.
    sys.stdin.buffer.read()
    os._exit(0)


def main():
    site_packages, data_dir = sys.argv[1], sys.argv[2]
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()

    so = os.path.join(site_packages, "chdb", "_chdb.abi3.so")
    flags = sys.getdlopenflags()
    sys.setdlopenflags(os.RTLD_NOW | os.RTLD_GLOBAL | os.RTLD_DEEPBIND)
    try:
        spec = importlib.util.spec_from_file_location("_chdb", so)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.setdlopenflags(flags)

    try:
        mod.query(
            # TCP first: once HTTP answers, both listeners are bound.
            "SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; "
            "SELECT sleepEachRow(3) FROM numbers(1000000000) "
            "SETTINGS max_block_size = 1, "
            "function_sleep_max_microseconds_per_block = 0, "
            "max_execution_time = 0",
            "CSV",
            path=data_dir,
        )
    except BaseException as e:
        print(f"serve.py: the serving query failed: {e!r}", file=sys.stderr)
    else:
        # A failed START LISTEN (say, a port in use) is printed by the
        # library and the call returns.
        print("serve.py: the serving query returned", file=sys.stderr)
    sys.stderr.flush()
    # os._exit: a normal exit would wait on the stdin thread and abort.
    os._exit(1)


if __name__ == "__main__":
    main()
