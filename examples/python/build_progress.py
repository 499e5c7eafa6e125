#!/usr/bin/python3
"""Build a Dockerfile with a progress bar (tqdm when installed, else a plain one).

    build_progress.py [--root STORE] [-t NAME]... CONTEXT

Each ProgressEvent says what moved: STEP events carry the step number and
the step count (one bar for the build), BYTES events the bytes of the
context, a layer or a pulled blob, OUTPUT events a line of a RUN.
"""
import argparse
import sys

import imagebuild

try:
    from tqdm import tqdm
except ImportError:  # a small stand-in with tqdm's few calls used here
    class tqdm:  # type: ignore[no-redef]
        def __init__(self, total=0, desc="", file=sys.stderr):
            self.total, self.n, self.desc, self.file = total, 0, desc, file

        def update(self, n=1):
            self.n += n
            width = 30
            done = int(width * self.n / self.total) if self.total else 0
            print("\r%s [%s%s] %d/%d" % (self.desc, "#" * done, "." * (width - done), self.n, self.total),
                  end="", file=self.file, flush=True)

        def write(self, line):
            print("\r" + line, file=self.file)

        def close(self):
            print(file=self.file)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", help="the store (default: the library's)")
    ap.add_argument("-t", "--tag", action="append", default=[])
    ap.add_argument("context")
    args = ap.parse_args()
    bar = None

    def on_progress(ev: imagebuild.ProgressEvent) -> None:
        nonlocal bar
        if ev.kind is imagebuild.ProgressKind.STEP:
            if bar is None:
                bar = tqdm(total=ev.total, desc="build")
            bar.total = ev.total  # ONBUILD triggers can add steps
            bar.write("%s %s%s" % (ev.id, ev.text, " (cached)" if ev.cached else ""))
        elif ev.kind is imagebuild.ProgressKind.STEP_DONE and bar is not None:
            bar.update(1)
        elif ev.kind is imagebuild.ProgressKind.OUTPUT and bar is not None:
            bar.write("  " + (ev.text or ""))

    with imagebuild.Store(args.root) as store:
        try:
            result = store.build(args.context, args.tag, on_progress=on_progress)
        except imagebuild.StepFailed as e:
            if bar is not None:
                bar.close()
            print("%s `%s` failed with exit code %s" % (e.step, e.command, e.exit_code), file=sys.stderr)
            return 1
        finally:
            if bar is not None:
                bar.close()
    print("%s (%d steps, %d cached)" % (result.id, result.steps, result.cached_steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
