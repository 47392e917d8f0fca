r"""Deciding an identity over *atoms*: small sums named once, so large identities need not be expanded.

Used by :func:`~equivalence.symbolic.engine.decide_identity` (lazy method) before the full per-entry
expansion of :func:`~equivalence.symbolic.algebra.expand_pair`. See :class:`AtomTable` for why it is sound;
``docs/proofs.md`` (Tiers) for what it buys (the all-T tier of both LSA constructions at $d=32$).
"""

from .algebra import Lazy, to_fraction

__all__ = ["AtomTable", "expand_pair_atoms"]


class AtomTable:
    r"""Names for small sums: *atoms*, used by :func:`expand_pair_atoms` to decide an identity without
    expanding it fully.

    A *leaf sum* is a ``+`` chain of at least two leaves, each a constant, a generator, or a constant times a
    product of two generators (e.g. $v_i=\sum_a W_V[i,a]\,x_a$, or $\sum_j W_K[j,b]W_Q[j,c]$). Every leaf sum
    gets the atom of its expanded polynomial (interned by its canonical form, so equal polynomials computed on
    the two sides of an identity get the same atom). Substituting the atoms' polynomials is a ring
    homomorphism, so two values that are equal as polynomials in generators *and atoms* are equal as
    polynomials in the generators (**sound**). The converse can fail (the sides may group terms
    differently): then the caller expands fully (complete).
    """

    def __init__(self):
        self.by_id: dict[int, int] = {}  # id(node) -> atom index, or -1 (not a leaf sum)
        self.by_key: dict[tuple, int] = {}
        self._keep: list = []  # keeps the nodes alive so that ids stay unique

    @staticmethod
    def _mono(m):
        """``(sorted generator tuple, coefficient)`` of a generator / product of two / scaled one; else
        None."""
        if type(m) is not Lazy:
            return (), (m if type(m) is int else to_fraction(m))
        op = m.op
        if op == "g":
            return (m.a,), 1
        if op == "*":
            a, b = m.a, m.b
            if type(a) is Lazy and type(b) is Lazy and a.op == "g" and b.op == "g":
                return ((a.a, b.a) if a.a <= b.a else (b.a, a.a)), 1
            return None
        if op == "c" and type(m.a) is Lazy:
            r = AtomTable._mono(m.a)
            return None if r is None else (r[0], r[1] * (m.b if type(m.b) is int else to_fraction(m.b)))
        return None

    def atom(self, n):
        """The atom of node ``n`` if it is a leaf sum, else ``None`` (memoised; chains are scanned once)."""
        if type(n) is not Lazy or n.op != "+":
            return None
        r = self.by_id.get(id(n))
        if r is not None:
            return r if r >= 0 else None
        for ch in (n.a, n.b):  # fast reject: an operand that is neither a leaf nor a + node
            if type(ch) is Lazy and ch.op != "+" and self._mono(ch) is None:
                self.by_id[id(n)] = -1
                self._keep.append(n)
                return None
        # iterative post-order over the + chain: a + node is a leaf sum iff both operands are leaves or leaf
        # sums
        stack, order = [n], []
        while stack:
            m = stack.pop()
            if type(m) is Lazy and m.op == "+" and id(m) not in self.by_id:
                self.by_id[id(m)] = -2  # visiting
                order.append(m)
                stack.append(m.a)
                stack.append(m.b)
        for m in reversed(order):  # children before parents
            ok = True
            acc: dict = {}
            for ch in (m.a, m.b):
                if type(ch) is Lazy and ch.op == "+":
                    k = self.by_id.get(id(ch), -1)
                    if k < 0:
                        ok = False
                        break
                    for mono, c in self._key_of[k]:
                        acc[mono] = acc.get(mono, 0) + c
                else:
                    mc = self._mono(ch)
                    if mc is None:
                        ok = False
                        break
                    acc[mc[0]] = acc.get(mc[0], 0) + mc[1]
            if not ok:
                self.by_id[id(m)] = -1
                self._keep.append(m)
                continue
            key = tuple(sorted((mono, c) for mono, c in acc.items() if c != 0))
            idx = self.by_key.get(key)
            if idx is None:
                idx = self.by_key[key] = len(self.by_key)
                self._key_of.append(key)
            self.by_id[id(m)] = idx
            self._keep.append(m)
        r = self.by_id[id(n)]
        return r if r >= 0 else None

    @property
    def _key_of(self) -> list:
        return self.__dict__.setdefault("_keys", [])


def expand_pair_atoms(u, v, bits: int, table: AtomTable):
    """Like :func:`expand_pair`, but every leaf sum is one variable (its :class:`AtomTable` atom), and the
    arithmetic is on plain dictionaries ``{Kronecker exponent: int or Fraction}`` (no ring objects: the
    polynomials here are many and small). Returns ``(difference as a dict without zero coefficients,
    number of terms of u and v)``; an empty difference proves ``u == v``."""
    by_id = table.by_id
    gexp: dict = {}  # generator -> its Kronecker exponent (positions assigned on first use)
    aexp: dict = {}  # atom -> its Kronecker exponent
    memo: dict = {}

    def var(n):
        op = n.op
        if op == "g":
            e = gexp.get(n.a)
            if e is None:
                e = gexp[n.a] = 1 << (bits * (len(gexp) + len(aexp)))
            return e
        if op == "+":
            a = by_id.get(id(n))
            if a is None or a == -2:
                a = table.atom(n)
                a = -1 if a is None else a
            if a >= 0:
                e = aexp.get(a)
                if e is None:
                    e = aexp[a] = 1 << (bits * (len(gexp) + len(aexp)))
                return e
        return None

    def simple(m):
        """``(exponent, coefficient)`` of a variable, a product of two variables, or a scaled one; else
        None."""
        e = var(m)
        if e is not None:
            return e, 1
        op = m.op
        if op == "*":
            if type(m.a) is Lazy and type(m.b) is Lazy:
                ea, eb = var(m.a), var(m.b)
                if ea is not None and eb is not None:
                    return ea + eb, 1
        elif op == "c" and type(m.a) is Lazy:
            s_ = simple(m.a)
            if s_ is not None:
                return s_[0], s_[1] * m.b
        return None

    def add_into(r, n, shift, depth):
        """``r += n * z^shift`` for a non-simple Lazy leaf ``n``; a product (sum) x (variable) is streamed
        into ``r`` without building the sum's dictionary (``depth`` more levels of such products)."""
        get = r.get
        if depth and n.op == "*" and id(n) not in memo:
            a_, b_ = n.a, n.b
            e = var(b_) if type(b_) is Lazy else None
            if e is None and type(a_) is Lazy:
                e, a_ = var(a_), b_
            if e is not None:
                if type(a_) is Lazy and a_.op == "+" and id(a_) not in memo and var(a_) is None:
                    st = [a_]
                    while st:
                        m = st.pop()
                        if type(m) is Lazy and m.op == "+" and id(m) not in memo and var(m) is None:
                            st.append(m.a)
                            st.append(m.b)
                        elif type(m) is not Lazy:
                            r[shift + e] = get(shift + e, 0) + m
                        else:
                            s_ = simple(m)
                            if s_ is not None:
                                k = s_[0] + shift + e
                                r[k] = get(k, 0) + s_[1]
                            else:
                                add_into(r, m, shift + e, depth - 1)
                    return
                for k, c in ex(a_).items():
                    k += shift + e
                    r[k] = get(k, 0) + c
                return
        for k, c in ex(n).items():
            k += shift
            r[k] = get(k, 0) + c

    def ex(n):
        if type(n) is not Lazy:
            return {0: n} if n != 0 else {}
        r = memo.get(id(n))
        if r is not None:
            return r
        e = var(n)
        if e is not None:
            r = {e: 1}
        elif n.op == "+":
            leaves, st = [], [n]
            while st:
                m = st.pop()
                if type(m) is Lazy and m.op == "+" and id(m) not in memo and var(m) is None:
                    st.append(m.a)
                    st.append(m.b)
                else:
                    leaves.append(m)
            r = {}
            get = r.get
            for leaf in leaves:
                if type(leaf) is not Lazy:
                    r[0] = get(0, 0) + leaf
                    continue
                s_ = simple(leaf)
                if s_ is not None:
                    r[s_[0]] = get(s_[0], 0) + s_[1]
                    continue
                add_into(r, leaf, 0, 2)
        elif n.op == "*":
            pa, pb = ex(n.a), ex(n.b)
            if len(pa) < len(pb):
                pa, pb = pb, pa
            if len(pb) == 1:
                ((kb, cb),) = pb.items()
                r = {k + kb: c * cb for k, c in pa.items()} if cb != 1 else {k + kb: c for k, c in pa.items()}
            else:
                r = {}
                for kb, cb in pb.items():
                    for k, c in pa.items():
                        r[k + kb] = r.get(k + kb, 0) + c * cb
        else:
            r = {k: c * n.b for k, c in ex(n.a).items()}
        memo[id(n)] = r
        return r

    pu, pv = ex(u), ex(v)
    diff = dict(pu)
    for k, c in pv.items():
        diff[k] = diff.get(k, 0) - c
    return {k: c for k, c in diff.items() if c != 0}, len(pu) + len(pv)
