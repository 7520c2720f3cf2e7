"""Safe in-process evaluation of N2D2's ``$(...)`` expressions.

N2D2 runs ``python -c "print(<expr>)"``; that would let an INI file run any
code. Here the text is parsed with ``ast`` and walked against an allow-list of
arithmetic: numbers, ``+ - * / // % **``, unary ``+ - not``, ``and``/``or``,
comparisons, ``a if c else b`` and the calls ``int float min max round abs``.
Nothing is ever passed to ``eval``/``exec``.
"""

import ast
import functools
import math
import operator
import re

from n2prune.errors import IniError

BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod, ast.Pow: operator.pow,
}
UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_}
COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}
FUNCTIONS = {"int": int, "float": float, "min": min, "max": max, "round": round, "abs": abs}

MAX_EXPONENT = 1000
# Past 1e308 a float is inf; ints are capped alike so no value can grow huge.
MAX_MAGNITUDE = 10 ** 308
# round(x, -n) builds 10**n: beyond the float range the result is 0 (or x) anyway.
MAX_NDIGITS = 400
# Checked on the text before ast.parse, whose parser runs out of memory (not
# recursion) on a few thousand nested operators. INI expressions are short.
MAX_SOURCE_CHARS = 10_000
MAX_NESTING = 100

# Tokens that matter for nesting: brackets, unary-capable operators, the rest.
_TOKEN = re.compile(r"\*\*|//|[<>=!]=|\bnot\b|[-+~()\[\]{},]|[\w.]+|\S")
_OPENING, _CLOSING, _UNARY = "([{", ")]}", ("-", "+", "~", "not")


class _Refused(Exception):
    """A construct outside the allow-list (message says which)."""


class _TooBig(Exception):
    """Text too long or too deeply nested to hand to the parser."""


def evaluate(source):
    """Evaluate the text inside ``$(...)``; returns an int, float or bool.

    Raises IniError (without location: the caller adds ``file:line``) when the
    text is not arithmetic, or cannot be evaluated (division by zero, huge
    powers, results beyond 1e308).
    """
    try:
        return _evaluate_bounded(source)
    except _Refused as refused:
        raise IniError(f"{_shown(source)} may only contain arithmetic: {refused}") from None
    except _TooBig as too_big:
        raise IniError(f"{_shown(source)} {too_big}") from None
    except SyntaxError as error:
        raise IniError(f"{_shown(source)} is not a valid expression: {error.msg}") from None
    except (ArithmeticError, ValueError, TypeError) as error:
        raise IniError(f"{_shown(source)} cannot be evaluated: {error}") from None
    except (RecursionError, MemoryError):
        raise IniError(f"{_shown(source)} is nested too deeply") from None


def _shown(source):
    # Long sources are cut: the error line must stay readable.
    return f"`$({source})`" if len(source) <= 60 else f"`$({source[:50]}...)`"


def _evaluate_bounded(source):
    if len(source) > MAX_SOURCE_CHARS:
        raise _TooBig(f"is too long ({len(source)} characters, at most {MAX_SOURCE_CHARS})")
    # The nesting cannot exceed the number of characters.
    if len(source) > MAX_NESTING and _nesting(source) > MAX_NESTING:
        raise _TooBig(f"is nested too deeply (more than {MAX_NESTING} levels)")
    return _evaluate_checked(source.strip())

@functools.lru_cache(maxsize=1024)
def _evaluate_checked(source):
    # Cached: a value may repeat one expression thousands of times.
    return _check(_eval(ast.parse(source, mode="eval").body))


def _nesting(source):
    """A cheap estimate of the parse depth: open brackets plus stacked unary operators.

    A unary operator is one that follows an operator, an opening bracket or
    the start; a run of them (``- - - 1``, ``-(-(-1``) nests one level each.
    """
    depth = run = deepest = 0
    after_operand = False
    for token in _TOKEN.findall(source):
        if token in _OPENING:
            depth, after_operand = depth + 1, False
        elif token in _CLOSING:
            depth, run, after_operand = depth - 1, 0, True
        elif token in _UNARY and not after_operand:
            run += 1
        else:
            # An operand ends the run of unary operators; a binary operator keeps it at 0.
            after_operand = token[0].isalnum() or token[0] in "._"
            run = 0 if after_operand else run
        deepest = max(deepest, depth + run)
    return deepest


def format_result(value):
    """The text ``print(value)`` would show: ``12``, ``0.5``, ``True``."""
    return str(value)


def _eval(node):
    handler = _HANDLERS.get(type(node))
    if handler is None:
        raise _Refused(f"{_describe(node)} is not allowed")
    return handler(node)


def _constant(node):
    value = node.value
    if isinstance(value, (bool, int, float)):
        return _check(value)
    raise _Refused(f"the constant {value!r} is not a number")


def _binary(node):
    op = BINARY.get(type(node.op))
    if op is None:
        raise _Refused(f"operator {type(node.op).__name__} is not allowed")
    left, right = _eval(node.left), _eval(node.right)
    if op is operator.pow:
        _check_power(left, right)
    return _check(op(left, right))


def _check_power(base, exponent):
    if abs(exponent) > MAX_EXPONENT:
        raise ArithmeticError(f"exponent larger than {MAX_EXPONENT}")
    if abs(base) > 1 and exponent > 0 and exponent * math.log10(abs(base)) > 308:
        raise ArithmeticError("result larger than 1e308")


def _unary(node):
    op = UNARY.get(type(node.op))
    if op is None:
        raise _Refused(f"operator {type(node.op).__name__} is not allowed")
    return op(_eval(node.operand))


def _bool_op(node):
    # Short-circuit and return the deciding operand, as Python does.
    is_and = isinstance(node.op, ast.And)
    value = None
    for operand in node.values:
        value = _eval(operand)
        if bool(value) != is_and:
            return value
    return value


def _compare(node):
    left = _eval(node.left)
    for op_node, right_node in zip(node.ops, node.comparators):
        op = COMPARE.get(type(op_node))
        if op is None:
            raise _Refused(f"comparison {type(op_node).__name__} is not allowed")
        right = _eval(right_node)
        if not op(left, right):
            return False
        left = right
    return True


def _if_exp(node):
    return _eval(node.body) if _eval(node.test) else _eval(node.orelse)


def _call(node):
    name = node.func.id if isinstance(node.func, ast.Name) else None
    if name not in FUNCTIONS:
        raise _Refused(f"calling {ast.unparse(node.func)} is not allowed "
                       f"(only {', '.join(FUNCTIONS)})")
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise _Refused(f"{name}() takes positional numbers only")
    args = [_eval(arg) for arg in node.args]
    if name == "round" and len(args) == 2:
        _check_ndigits(args[1])
    return FUNCTIONS[name](*args)


def _check_ndigits(ndigits):
    # round(1, -10**8) would build 10**(10**8): refuse instead of hanging.
    if isinstance(ndigits, int) and abs(ndigits) > MAX_NDIGITS:
        raise ValueError(f"round() ndigits beyond +-{MAX_NDIGITS}")


def _check(value):
    """Refuse results no INI value needs: complex, inf/nan, beyond 1e308."""
    if not isinstance(value, (bool, int, float)):
        raise TypeError(f"result {value!r} is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ArithmeticError(f"result {value} is not finite")
    if isinstance(value, int) and abs(value) > MAX_MAGNITUDE:
        raise ArithmeticError("result larger than 1e308")
    return value


def _describe(node):
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    return f"{type(node).__name__} ({ast.unparse(node)})"


_HANDLERS = {
    ast.Constant: _constant, ast.BinOp: _binary, ast.UnaryOp: _unary,
    ast.BoolOp: _bool_op, ast.Compare: _compare, ast.IfExp: _if_exp, ast.Call: _call,
}
