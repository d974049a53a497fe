"""Option spellings shared by the commands: one name per idea, old names kept as hidden aliases."""

from __future__ import annotations

import argparse
import sys


class _DeprecatedAlias(argparse.Action):
    """An old spelling that still works and says, in one line, what it is called now."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"note: {option_string} is now spelt {self.new}; the old spelling will go in a later version",
              file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_alias(parser, old: str, new: str, dest: str, **kwargs) -> None:
    """`old` sets `dest` like `new` does, hidden from --help. For a flag pass nargs=0 and const."""
    parser.add_argument(old, dest=dest, action=_DeprecatedAlias, new=new, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, **kwargs)


def add_quiet(parser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_alias(parser, "--no-progress", "--quiet", dest="quiet", nargs=0, const=True)


TTA_HELP = "also score each face mirrored and average (flip test-time augmentation)"


def add_tta(parser, takes_mode: bool = False) -> None:
    """`--tta` alone means flip in every command (args.tta is "flip" or "none"). Where the positionals come
    first (evaluate) it also takes the mode, `--tta flip|none`; in scan a word after it is a path."""
    from ..models.predict import TTA_MODES

    if takes_mode:
        parser.add_argument("--tta", nargs="?", const="flip", default="none", choices=TTA_MODES,
                            help=f"{TTA_HELP}; --tta none turns it off (default)")
    else:
        parser.add_argument("--tta", action="store_const", const="flip", default="none", help=TTA_HELP)


def add_aggregation(parser, default: str, help_text: str) -> None:
    from ..scoring import AGGREGATORS

    listed = "; ".join(f"{name}: {AGGREGATORS.get(name).description}".replace("%", "%%")
                       for name in AGGREGATORS.names())
    parser.add_argument("--aggregation", default=default, choices=AGGREGATORS.names(),
                        help=f"{help_text} (default: %(default)s). {listed}")
    add_alias(parser, "--aggregate", "--aggregation", dest="aggregation", choices=AGGREGATORS.names())


def threshold_option(rules: tuple[str, ...]):
    """An argparse type for --threshold: a probability, or one of the named rules."""

    def parse(text: str):
        if text in rules:
            return text
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"use a probability between 0 and 1 or one of {', '.join(rules)}; "
                                             f"got {text!r}")
        return value

    return parse
