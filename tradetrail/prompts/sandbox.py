"""The bounded Jinja sandbox prompt templates compile in.

Jinja's immutable sandbox refuses unsafe attributes and mutation; on top of it every operation a template
performs passes through a hook that spends from the render's budget (see ``budget.py``): operators (all of
them intercepted, which also stops jinja from folding them at compile time), calls, filters, tests, outputs,
slices, the text of macros and blocks, and, through a rewrite of the parsed template, each loop iteration,
comparison, ``~`` and list, tuple or dict literal.
"""

from __future__ import annotations

from functools import update_wrapper
from types import BuiltinMethodType, MethodType

from jinja2 import StrictUndefined, nodes
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace, pass_context
from jinja2.visitor import NodeTransformer

from tradetrail.prompts.budget import Counted, check_value, check_values, current, text_size
from tradetrail.prompts.filters import make_filters, make_tests
from tradetrail.prompts.formats import BoundedFormatter, check_printf
from tradetrail.prompts.limits import MAX_INT_BITS, MAX_STEPS, MAX_VALUE_CHARS, TemplateLimitError

_SIZE_ARGUMENTS = {"ljust": "width", "rjust": "width", "center": "width", "zfill": "width", "to_bytes": "length"}
# translate/maketrans: a table can turn each character into a long text; encode/decode: a codec named by the
# template can cost quadratic time (punycode over 6,000 characters: 8 s) and a prompt has no use for bytes
_REFUSED_METHODS = {"translate", "maketrans", "encode", "decode"}


def _range(*args) -> range:
    numbers = range(*args)
    try:
        count = len(numbers)
    except OverflowError:
        count = MAX_STEPS + 1
    if count > MAX_STEPS:
        raise TemplateLimitError(f"range() of more than {MAX_STEPS:,} numbers is not allowed")
    return numbers


@pass_context
def _finalize(context, value) -> str:
    """Every ``{{ ... }}`` output: None prints as n/a; anything else is checked before str() builds its text."""
    budget = current()
    budget.tick()
    if value is None:
        return "n/a"
    if not isinstance(value, str):
        check_value(value, "an output")
        value = str(value)
    return budget.produced(value, "an output")


def _bounded_concat(pieces) -> str:
    """Joins the text of a macro, a block, a {% set %} or {% filter %} block."""
    budget = current()
    kept, size = [], 0
    for piece in pieces:
        size += len(piece)
        if size > MAX_VALUE_CHARS:
            raise TemplateLimitError(f"the text of a macro or block would be longer than {MAX_VALUE_CHARS:,} "
                                     "characters")
        kept.append(piece)
    budget.spend(size)
    return "".join(kept)


def _check_binop(op: str, left, right) -> None:
    what = f"an operand of '{op}'"
    check_value(left, what)
    check_value(right, what)
    if op == "*":
        seq, times = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(times, int) and isinstance(seq, str | bytes | list | tuple):
            size = len(seq) if isinstance(seq, str | bytes) else text_size(seq)
            if size * max(times, 0) > MAX_VALUE_CHARS:
                raise TemplateLimitError(f"'*' would make a value longer than {MAX_VALUE_CHARS:,} characters")
        elif isinstance(left, int) and isinstance(right, int) and \
                left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise TemplateLimitError(f"'*' would make an integer of more than {MAX_INT_BITS:,} bits")
    elif op == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        if (left.bit_length() - 1) * right > MAX_INT_BITS:
            raise TemplateLimitError(f"'**' would make an integer of more than {MAX_INT_BITS:,} bits")
    elif op == "+" and isinstance(left, str | bytes | list | tuple) and isinstance(right, str | bytes | list | tuple):
        sizes = [len(v) if isinstance(v, str | bytes) else text_size(v) for v in (left, right)]
        if sum(sizes) > MAX_VALUE_CHARS:
            raise TemplateLimitError(f"'+' would make a value longer than {MAX_VALUE_CHARS:,} characters")
    elif op == "%" and isinstance(left, str | bytes):
        check_printf(left, right)


def _check_method(method, args: tuple, kwargs: dict) -> tuple:
    """Arguments of a built-in method (``'x'.ljust(n)``, ``', '.join(xs)``...), checked; returns them."""
    what = f"an argument of {method.__name__}()"
    check_values(args, what)
    check_values(kwargs.values(), what)
    owner, name = method.__self__, method.__name__
    size_argument = _SIZE_ARGUMENTS.get(name)
    if size_argument is not None:  # 'x'.ljust(10**9), (1).to_bytes(10**9)
        size = args[0] if args else kwargs.get(size_argument, 0)
        if isinstance(size, int) and size > MAX_VALUE_CHARS:
            raise TemplateLimitError(f"a {name}() {size_argument} above {MAX_VALUE_CHARS:,} is not allowed")
        return args
    if not isinstance(owner, str | bytes):
        return args
    if name in _REFUSED_METHODS:
        raise TemplateLimitError(f"{name}() is not allowed in prompt templates")
    if name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        tab = "\t" if isinstance(owner, str) else b"\t"
        if isinstance(tabsize, int) and len(owner) + owner.count(tab) * max(tabsize, 0) > MAX_VALUE_CHARS:
            raise TemplateLimitError(f"expandtabs() would make a text longer than {MAX_VALUE_CHARS:,} characters")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], type(owner)) and \
            isinstance(args[1], type(owner)):
        old, new = args[0], args[1]
        hits = len(owner) + 1 if not old else owner.count(old)
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            hits = min(hits, args[2])
        if len(owner) + hits * max(len(new) - len(old), 0) > MAX_VALUE_CHARS:
            raise TemplateLimitError(f"replace() would make a text longer than {MAX_VALUE_CHARS:,} characters")
    elif name == "join" and args:
        items, size = [], -len(owner)
        for item in args[0]:
            size += len(owner) + (len(item) if isinstance(item, str | bytes) else text_size(item))
            if size > MAX_VALUE_CHARS:
                raise TemplateLimitError(f"join() would make a text longer than {MAX_VALUE_CHARS:,} characters")
            items.append(item)
        return (items, *args[1:])
    return args


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(("+", "-", "*", "/", "//", "%", "**"))
    concat = staticmethod(_bounded_concat)

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
                         finalize=_finalize, optimized=False)
        self.filters = make_filters()
        self.tests = make_tests()
        # no lipsum: random text has no place in a prompt a replay must reproduce
        self.globals = {"range": _range, "dict": dict, "cycler": Cycler, "joiner": Joiner, "namespace": Namespace}

    def call_binop(self, context, operator: str, left, right):
        budget = current()
        budget.tick()
        _check_binop(operator, left, right)
        return budget.produced(self.binop_table[operator](left, right), f"the result of '{operator}'")

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja's signature
        budget = current()
        budget.tick()
        if isinstance(__obj, LoopContext) and args:  # loop(children) in a recursive loop iterates them
            args = (Counted(args[0]), *args[1:])
        elif isinstance(__obj, BuiltinMethodType):
            args = _check_method(__obj, args, kwargs)
        budget.enter()
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.leave()
        return budget.produced(result, "the result of a call")

    def getitem(self, obj, argument):
        value = super().getitem(obj, argument)
        if isinstance(argument, slice):  # a slice is a copy
            budget = current()
            budget.tick()
            value = budget.produced(value, "a slice")
        return value

    def wrap_str_format(self, value):
        """``'...'.format`` and ``format_map``, through a formatter that bounds what they build."""
        if not isinstance(value, MethodType | BuiltinMethodType) or value.__name__ not in ("format", "format_map"):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        is_map = value.__name__ == "format_map"

        def bounded_format(*args, **kwargs) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            return str(BoundedFormatter(self).vformat(owner, args, kwargs))

        return update_wrapper(bounded_format, value)


def _internal(node: nodes.Expr, name: str, args: list | None = None) -> nodes.Filter:
    return nodes.Filter(node, name, args or [], [], None, None, lineno=node.lineno)


class _Rewrite(NodeTransformer):
    """Routes the operations jinja compiles to plain Python through the budget's hooks."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        node = self.generic_visit(node)
        node.iter = _internal(node.iter, "_tt_each")
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:
        node = self.generic_visit(node)
        return _internal(nodes.List(node.nodes, lineno=node.lineno), "_tt_concat")

    def visit_Compare(self, node: nodes.Compare) -> nodes.Filter:
        node = self.generic_visit(node)
        args = []
        for operand in node.ops:
            args += [nodes.Const(operand.op, lineno=node.lineno), operand.expr]
        return _internal(node.expr, "_tt_compare", args)

    def _literal(self, node):
        node = self.generic_visit(node)
        return _internal(node, "_tt_made")

    visit_List = visit_Dict = _literal

    def visit_Tuple(self, node: nodes.Tuple):
        return self._literal(node) if node.ctx == "load" else self.generic_visit(node)


def rewrite(ast: nodes.Template, env: BoundedSandbox) -> nodes.Template:
    """The parsed template with its loops, comparisons, '~' and literals routed through the hooks. The caller
    has checked how deep it nests (this recursion follows it)."""
    ast = _Rewrite().visit(ast)
    ast.set_environment(env)
    return ast
