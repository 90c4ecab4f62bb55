#!/usr/bin/env python3
"""The long fuzz run (``make fuzz``): the property tests of tests/test_fuzz_properties.py
with many more cases, repeated with fresh random seeds until a time budget is spent.

    fuzz/run.py [--examples N] [--seconds S] [--only SUBSTRING]

Each target runs ``--examples`` cases per round (``CUBEGW_FUZZ_EXAMPLES``), for at least
one round and until ``--seconds`` have passed for it.  A failure is shrunk by hypothesis
and printed; the run goes on with the next target.  At the end: cases run and crashes
found per target; the exit status is 1 if anything crashed.
"""

import argparse
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000, help="cases per target per round")
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="keep running new rounds of each target for this long")
    parser.add_argument("--only", default="", help="run the targets whose name contains this")
    args = parser.parse_args(argv)

    os.environ["CUBEGW_FUZZ_EXAMPLES"] = str(args.examples)
    sys.path.insert(0, ROOT)
    from tests import test_fuzz_properties as props  # after the env var: it sets the settings

    targets = [(cls, name) for cls in (props.CodecPropertyTests, props.ParameterPropertyTests,
                                       props.UciPropertyTests, props.StorePropertyTests,
                                       props.RegistrationPropertyTests)
               for name in sorted(vars(cls)) if name.startswith("test_")
               if args.only in f"{cls.__name__}.{name}"]
    rows, started = [], time.monotonic()
    for cls, name in targets:
        label = f"{cls.__name__}.{name}"
        before = sum(props.CASES.values())
        crashes, rounds, t0 = [], 0, time.monotonic()
        while rounds == 0 or time.monotonic() - t0 < args.seconds:
            rounds += 1
            try:
                getattr(cls(name), name)()
            except Exception as e:  # a property failed: hypothesis has printed the example
                crashes.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                traceback.print_exc()
                break
        cases = sum(props.CASES.values()) - before
        rows.append((label, rounds, cases, len(crashes), time.monotonic() - t0))
        print(f"{label}: {cases} cases in {rounds} rounds, {len(crashes)} crashes "
              f"({time.monotonic() - t0:.1f} s)", flush=True)
        for crash in crashes:
            print(f"    {crash}")

    print("\nfuzz summary (hypothesis, %d examples per round, %.0f s)"
          % (args.examples, time.monotonic() - started))
    print(f"{'target':55} {'rounds':>6} {'cases':>9} {'crashes':>7}")
    for label, rounds, cases, crashed, _ in rows:
        print(f"{label:55} {rounds:6d} {cases:9d} {crashed:7d}")
    total_cases = sum(r[2] for r in rows)
    total_crashes = sum(r[3] for r in rows)
    print(f"{'total':55} {'':6} {total_cases:9d} {total_crashes:7d}")
    return 1 if total_crashes else 0


if __name__ == "__main__":
    sys.exit(main())
