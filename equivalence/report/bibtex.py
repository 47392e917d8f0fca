"""BibTeX entries: the report itself (keyed by its certificate's content digest) and the paper."""

from .trust import headline, variants

__all__ = ["PAPER_BIBTEX", "report_bibtex"]

PAPER_BIBTEX = """@article{zucchet2023gated,
  title   = {Gated recurrent neural networks discover attention},
  author  = {Zucchet, Nicolas and Kobayashi, Seijin and Akram, Yassir and von Oswald, Johannes and
             Larcher, Maxime and Steger, Angelika and Sacramento, Jo{\\~a}o},
  journal = {arXiv preprint arXiv:2309.01775},
  year    = {2023},
  url     = {https://arxiv.org/abs/2309.01775}
}"""


def _esc(s: str) -> str:
    return "".join("\\" + ch if ch in "{}%&#_$" else ch for ch in s)


def report_bibtex(cert: dict) -> str:
    """A ``@misc`` entry for this report: the variants, version, commit, date, the claim counts (the same
    as the report's headline) and the content digest."""
    p = cert["provenance"]
    digest = cert["integrity"]["content"]
    date = p.get("date", "")
    year, month = (date[:4], date[5:7]) if len(date) >= 7 else ("", "")
    n = len(cert["claims"])
    _, head, counts = headline(cert)
    names = variants(cert)
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    about = f"{shown} vs linear self-attention" if names else "gated linear {RNNs} and linear self-attention"
    version = p.get("package", {}).get("version", "")
    commit = p.get("git", {}).get("commit", "unknown")
    return (
        f"@misc{{are_report_{digest[:12]},\n"
        f"  title        = {{Equivalence report: {_esc(about) if names else about} ({n} claims)}},\n"
        f"  author       = {{{{attention-rnn-equivalence developers}}}},\n"
        f"  year         = {{{year}}},\n"
        f"  month        = {{{month}}},\n"
        f"  howpublished = {{attention-rnn-equivalence {_esc(version)}, commit {_esc(commit[:12])}}},\n"
        f"  note         = {{{_esc(head)}: {_esc(counts)}"
        + (f"; variants: {_esc(', '.join(names))}" if names else "")
        + f"; certificate content sha256 {digest}; re-check with python -m equivalence check-certificate "
        f"certificate.json}}\n"
        f"}}"
    )
