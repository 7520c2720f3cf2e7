"""Safe in-process evaluation of N2D2's ``$(...)`` expressions.

N2D2 runs ``python -c "print(<expr>)"``; that would let an INI file run any
code. Here the text is parsed with ``ast`` and walked against an allow-list of
arithmetic: numbers, ``+ - * / // % **``, unary ``+ - not``, ``and``/``or``,
comparisons, ``a if c else b`` and the calls ``int float min max round abs``.
Nothing is ever passed to ``eval``/``exec``.
"""

import ast
import math
import operator

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


class _Refused(Exception):
    """A construct outside the allow-list (message says which)."""


def evaluate(source):
    """Evaluate the text inside ``$(...)``; returns an int, float or bool.

    Raises IniError (without location: the caller adds ``file:line``) when the
    text is not arithmetic, or cannot be evaluated (division by zero, huge
    powers, results beyond 1e308).
    """
    shown = f"`$({source})`"
    try:
        tree = ast.parse(source.strip(), mode="eval")
        return _check(_eval(tree.body))
    except _Refused as refused:
        raise IniError(f"{shown} may only contain arithmetic: {refused}") from None
    except SyntaxError as error:
        raise IniError(f"{shown} is not a valid expression: {error.msg}") from None
    except (ArithmeticError, ValueError, TypeError) as error:
        raise IniError(f"{shown} cannot be evaluated: {error}") from None
    except RecursionError:
        raise IniError(f"{shown} is nested too deeply") from None


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
        return value
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
        raise ArithmeticError(f"exponent {exponent} is larger than {MAX_EXPONENT}")
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
    return FUNCTIONS[name](*[_eval(arg) for arg in node.args])


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
