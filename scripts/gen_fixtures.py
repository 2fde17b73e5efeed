#!/usr/bin/env python3
"""Generate the PyTorch reference fixtures in test/fixtures/*.json.

Run with Debian's python3 (python3-torch, python3-torchvision):

    /usr/bin/python3 scripts/gen_fixtures.py        # or: npm run fixtures

Deterministic (fixed seeds, one thread) and fast (a few seconds).  Every case
is computed with float32 PyTorch on the CPU; "expected" is exactly what torch
returns (loss and torch.autograd.grad(loss, input, gradOutput)), except for the
cases carrying a "deviation" string, where PyTorch's autograd produces NaN only
because of numerical luck and the expected values are the exact limits computed
in float64 closed form (see focal_ref64 / sigmoid_focal_ref64).

Every case is additionally re-evaluated in float64 (same torch function, or the
closed form for the focal losses) and the float32 result is checked against it
with the test tolerance 1e-5 + 1e-4*|expected|; mismatches are reported on
stderr so that a more accurate implementation is never failed by a fixture.

File format (one file per loss):
  { "generator", "torch", "torchvision", "cases": [...], "errors": [...] }
case: { name, loss, options, input{shape,data}, target{kind,shape,data},
        gradOutput, expected{loss, grad}, deviation? }
Non-finite floats are written as the strings "NaN", "Infinity", "-Infinity".
"""

import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torchvision.ops import sigmoid_focal_loss

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "test" / "fixtures"

INF = float("inf")
NAN = float("nan")
F32 = torch.float32
F64 = torch.float64
RTOL = 1e-4
ATOL = 1e-5

WARNINGS = []


# ----------------------------------------------------------------------------
# JSON helpers
# ----------------------------------------------------------------------------

def enc_float(v):
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def f32_list(values):
    """Round python numbers to float32 and return them as exact python floats."""
    return [float(v) for v in torch.tensor(values, dtype=F32).tolist()]


def tensor_json(t):
    t = t.detach()
    shape = list(t.shape)
    flat = t.reshape(-1).tolist()
    if t.dtype.is_floating_point:
        if t.dtype != F32:
            raise AssertionError("only float32 tensors go into fixtures")
        data = [enc_float(v) for v in flat]
    else:
        data = [int(v) for v in flat]
    return {"shape": shape, "data": data}


def shape_str(shape):
    return "(" + ",".join(str(s) for s in shape) + ")"


# ----------------------------------------------------------------------------
# comparison helpers
# ----------------------------------------------------------------------------

def mismatch(actual, ref):
    """Indices (flat) where actual (float32) is not within tolerance of ref (float64)."""
    a = actual.detach().double().reshape(-1)
    r = ref.detach().double().reshape(-1)
    bad = []
    for i in range(a.numel()):
        x, y = a[i].item(), r[i].item()
        if math.isnan(y) or math.isnan(x):
            if not (math.isnan(x) and math.isnan(y)):
                bad.append(i)
            continue
        if math.isinf(y) or math.isinf(x):
            if x != y:
                bad.append(i)
            continue
        if abs(x - y) > ATOL + RTOL * abs(y):
            bad.append(i)
    return bad


def nonfinite_where_ref_finite(actual, ref):
    a = actual.detach().double().reshape(-1)
    r = ref.detach().double().reshape(-1)
    return [i for i in range(a.numel())
            if (not math.isfinite(a[i].item())) and math.isfinite(r[i].item())]


# ----------------------------------------------------------------------------
# fixture file
# ----------------------------------------------------------------------------

class Fixture:
    def __init__(self, fname, loss, seed):
        self.fname = fname
        self.loss = loss
        self.cases = []
        self.errors = []
        self.names = set()
        self.gen = torch.Generator().manual_seed(seed)

    # random helpers ------------------------------------------------------
    def randn(self, shape, scale=1.0):
        return (torch.randn(tuple(shape), generator=self.gen, dtype=F32) * scale).to(F32)

    def rand(self, shape):
        return torch.rand(tuple(shape), generator=self.gen, dtype=F32)

    def randint(self, lo, hi, shape):
        return torch.randint(lo, hi, tuple(shape), generator=self.gen, dtype=torch.long)

    def mask(self, shape, p):
        return self.rand(shape) < p

    def unique(self, name):
        base, k = name, 2
        while name in self.names:
            name = f"{base}#{k}"
            k += 1
        self.names.add(name)
        return name

    # cases ---------------------------------------------------------------
    def add(self, name, options, x, target, kind, fn, reduction, grad_out=None,
            ref=None, deviation=None, auto_deviation=None):
        """fn(x, t) -> loss tensor (torch, dtype follows x).
        ref(x64, t, go64) -> (loss64, grad64) closed-form float64 reference
        (used for the focal losses); otherwise fn is re-run in float64."""
        name = self.unique(name)
        x = x.detach().to(F32).contiguous()
        xr = x.clone().requires_grad_(True)
        out = fn(xr, target)
        if grad_out is None:
            if reduction == "none":
                go = self.randn(out.shape)
            else:
                go = torch.tensor(1.0, dtype=F32)
        elif isinstance(grad_out, torch.Tensor):
            go = grad_out.to(F32)
        else:
            go = torch.tensor(float(grad_out), dtype=F32)
        assert go.shape == out.shape, (name, go.shape, out.shape)
        if out.requires_grad:
            (g,) = torch.autograd.grad(out, xr, go, allow_unused=True)
            if g is None:
                g = torch.zeros_like(x)
        else:
            g = torch.zeros_like(x)
        out = out.detach()

        # float64 reference
        t64 = target.double() if target.dtype.is_floating_point else target
        if ref is not None:
            l64, g64 = ref(x.double(), t64, go.double())
        else:
            x64 = x.double().requires_grad_(True)
            o64 = fn(x64, t64)
            if o64.requires_grad:
                (g64,) = torch.autograd.grad(o64, x64, go.double(), allow_unused=True)
                if g64 is None:
                    g64 = torch.zeros_like(x64)
            else:
                g64 = torch.zeros_like(x64)
            l64 = o64.detach()
            g64 = g64.detach()
        l64 = l64.reshape(out.shape)
        g64 = g64.reshape(g.shape)

        dev_l = nonfinite_where_ref_finite(out, l64)
        dev_g = nonfinite_where_ref_finite(g, g64)
        if deviation is None and auto_deviation is not None and (dev_l or dev_g):
            deviation = auto_deviation
        if deviation is not None:
            if not (dev_l or dev_g):
                raise AssertionError(f"{name}: marked as deviation but torch is finite")
            # expected = exact limit computed in float64, cast to float32
            exp_loss = l64.to(F32)
            exp_grad = g64.to(F32)
            # everything that torch does get finite must agree with the reference
            finite_bad = [i for i in mismatch(g, g64) if i not in dev_g]
            finite_bad_l = [i for i in mismatch(out, l64) if i not in dev_l]
            if finite_bad or finite_bad_l:
                WARNINGS.append(f"{self.fname}: {name}: deviation case also differs at "
                                f"finite positions loss{finite_bad_l} grad{finite_bad[:10]}")
            dev_text = deviation(dev_l, dev_g, out, g, exp_loss, exp_grad) \
                if callable(deviation) else deviation
        else:
            if dev_l or dev_g:
                raise AssertionError(f"{name}: torch non-finite where the reference is finite: "
                                     f"loss{dev_l} grad{dev_g[:10]}")
            bl, bg = mismatch(out, l64), mismatch(g, g64)
            if bl or bg:
                WARNINGS.append(
                    f"{self.fname}: {name}: float32 torch differs from float64 beyond tolerance "
                    f"at loss{bl[:5]} grad{bg[:8]} (e.g. grad {[(g.reshape(-1)[i].item(), g64.reshape(-1)[i].item()) for i in bg[:3]]}, "
                    f"loss {[(out.reshape(-1)[i].item(), l64.reshape(-1)[i].item()) for i in bl[:3]]})")
            exp_loss, exp_grad = out, g
            dev_text = None

        case = {
            "name": name,
            "loss": self.loss,
            "options": options,
            "input": tensor_json(x),
            "target": dict(kind=kind, **tensor_json(target)),
            "gradOutput": enc_float(go.item()) if reduction != "none" else tensor_json(go),
            "expected": {
                "loss": enc_float(exp_loss.item()) if reduction != "none" else tensor_json(exp_loss),
                "grad": tensor_json(exp_grad),
            },
        }
        if dev_text is not None:
            case["deviation"] = dev_text
        self.cases.append(case)
        return case

    def add_error(self, name, options, x, target, kind, fn):
        name = self.unique(name)
        try:
            fn(x.clone().requires_grad_(True), target)
        except Exception as e:  # noqa: BLE001 - we want the exact message
            msg = str(e).split("\n")[0]
        else:
            raise AssertionError(f"{name}: expected an error")
        self.errors.append({
            "name": name,
            "loss": self.loss,
            "options": options,
            "input": tensor_json(x.to(F32)),
            "target": dict(kind=kind, **tensor_json(target)),
            "message": msg,
        })

    def write(self):
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        dump = lambda o: json.dumps(o, separators=(",", ":"), allow_nan=False)
        parts = ["{\n",
                 f' "generator": "scripts/gen_fixtures.py",\n',
                 f' "torch": {json.dumps(torch.__version__)},\n',
                 f' "torchvision": {json.dumps(torchvision.__version__)},\n',
                 ' "cases": [\n']
        parts.append(",\n".join("  " + dump(c) for c in self.cases))
        parts.append("\n ]")
        if self.errors:
            parts.append(',\n "errors": [\n')
            parts.append(",\n".join("  " + dump(c) for c in self.errors))
            parts.append("\n ]")
        parts.append("\n}\n")
        path = OUT_DIR / self.fname
        path.write_text("".join(parts))
        return path


# ----------------------------------------------------------------------------
# CrossEntropyLoss
# ----------------------------------------------------------------------------

def ce_fn(opts):
    def fn(x, t):
        kw = {"reduction": opts.get("reduction", "mean")}
        if "weight" in opts:
            kw["weight"] = torch.tensor(opts["weight"], dtype=x.dtype)
        if "ignoreIndex" in opts:
            kw["ignore_index"] = opts["ignoreIndex"]
        if "labelSmoothing" in opts:
            kw["label_smoothing"] = opts["labelSmoothing"]
        return F.cross_entropy(x, t, **kw)
    return fn


def class_axis(shape):
    return 0 if len(shape) == 1 else 1


def index_target_shape(shape):
    shape = list(shape)
    del shape[class_axis(shape)]
    return shape


def gen_cross_entropy():
    fx = Fixture("cross_entropy.json", "CrossEntropyLoss", seed=1001)
    R = ["none", "mean", "sum"]
    scales = [1.0, 5.0, 30.0]
    sc_i = [0]

    def next_scale():
        s = scales[sc_i[0] % len(scales)]
        sc_i[0] += 1
        return s

    def idx_target(shape, ignore=None, p_ignore=0.0):
        C = shape[class_axis(shape)]
        t = fx.randint(0, C, index_target_shape(shape))
        if ignore is not None and p_ignore > 0:
            m = fx.mask(t.shape, p_ignore)
            if t.numel() > 1:
                m.view(-1)[0] = True    # at least one ignored
                m.view(-1)[-1] = False  # at least one kept
            t = torch.where(m, torch.full_like(t, ignore), t)
        return t

    def prob_target(shape, normalized=True):
        ax = class_axis(shape)
        if not normalized:
            return fx.rand(shape) * 2.0
        return torch.softmax(fx.randn(shape, 2.0), dim=ax).to(F32)

    def weight_for(C):
        return f32_list((fx.rand([C]) * 2.0 + 0.1).tolist())

    def case(tag, shape, kind, opts, x=None, t=None, grad_out=None, **tkw):
        reduction = opts.get("reduction", "mean")
        if x is None:
            x = fx.randn(shape, next_scale())
        if t is None:
            t = idx_target(shape, **tkw) if kind == "index" else prob_target(shape)
        name = f"ce/{kind}/{tag}/{shape_str(shape)}/{reduction}"
        fx.add(name, opts, x, t, kind, ce_fn(opts), reduction, grad_out=grad_out)

    # A. plain index targets over many shapes (SIMD tails, long rows, spatial)
    for shape in [(5,), (3, 5), (4, 37), (2, 130), (2, 4, 3), (2, 5, 3, 7), (1, 3, 2, 2),
                  (3, 1), (2, 2, 5, 1), (8, 3)]:
        for r in R:
            case("plain", shape, "index", {"reduction": r})
    # defaults (no options at all -> mean, ignoreIndex -100)
    case("defaults", (4, 6), "index", {})
    case("defaults", (4, 6), "prob", {})
    case("explicit-zero-smoothing", (4, 6), "index", {"labelSmoothing": 0.0, "reduction": "mean"})
    case("explicit-zero-smoothing", (4, 6), "prob", {"labelSmoothing": 0.0, "reduction": "sum"})

    # B. probability targets
    for shape in [(5,), (3, 5), (4, 37), (2, 4, 3), (2, 5, 3, 7), (2, 130)]:
        for r in R:
            case("plain", shape, "prob", {"reduction": r})
    for r in R:  # un-normalised non-negative "probabilities" (PyTorch does not normalise)
        shape = (3, 5)
        case("unnormalized", shape, "prob", {"reduction": r}, t=prob_target(shape, normalized=False))
    # probability targets with explicit negative ignoreIndex (allowed, no effect)
    case("ignoreIndex-100", (3, 5), "prob", {"ignoreIndex": -100, "reduction": "mean"})
    case("ignoreIndex-1", (3, 5), "prob", {"ignoreIndex": -1, "reduction": "sum"})

    # C. weight
    for shape in [(3, 5), (2, 4, 3), (4, 37), (5,)]:
        C = shape[class_axis(shape)]
        for r in R:
            case("weight", shape, "index", {"weight": weight_for(C), "reduction": r})
    for shape in [(3, 5), (2, 4, 3), (5,)]:
        C = shape[class_axis(shape)]
        for r in R:
            case("weight", shape, "prob", {"weight": weight_for(C), "reduction": r})

    # D. default ignore index -100 present in targets
    for shape in [(6, 5), (2, 4, 3), (2, 3, 4, 5), (3, 40)]:
        for r in R:
            case("ignore-100", shape, "index", {"reduction": r}, ignore=-100, p_ignore=0.3)
    for shape in [(6, 5), (2, 4, 3)]:
        C = shape[1]
        for r in R:
            case("weight+ignore-100", shape, "index", {"weight": weight_for(C), "reduction": r},
                 ignore=-100, p_ignore=0.3)

    # E. in-range ignore index (still enters the softmax) and custom negative ignore index
    for shape in [(6, 4), (2, 4, 3)]:
        C = shape[1]
        for r in R:
            case("ignoreIndex1", shape, "index", {"ignoreIndex": 1, "reduction": r})
            case("weight+ignoreIndex1", shape, "index",
                 {"weight": weight_for(C), "ignoreIndex": 1, "reduction": r})
    for r in R:
        case("ignoreIndex-1", (5, 4), "index", {"ignoreIndex": -1, "reduction": r},
             ignore=-1, p_ignore=0.3)
    # ignoreIndex equal to the last class
    case("ignoreIndex3", (6, 4), "index", {"ignoreIndex": 3, "reduction": "mean"})

    # F. label smoothing
    for eps in [0.1, 0.3, 1.0]:
        for use_w in [False, True]:
            for variant in ["index", "index+ignore", "prob"]:
                for r in R:
                    shape = (5, 4)
                    opts = {"labelSmoothing": eps, "reduction": r}
                    tag = f"smoothing{eps}"
                    if use_w:
                        opts["weight"] = weight_for(4)
                        tag = "weight+" + tag
                    if variant == "index+ignore":
                        case(tag + "+ignore-100", shape, "index", opts, ignore=-100, p_ignore=0.3)
                    else:
                        case(tag, shape, variant, opts)
    for r in R:
        case("weight+smoothing0.1+ignore-100", (2, 4, 3), "index",
             {"weight": weight_for(4), "labelSmoothing": 0.1, "reduction": r}, ignore=-100, p_ignore=0.3)
        case("weight+smoothing0.1", (2, 4, 3), "prob",
             {"weight": weight_for(4), "labelSmoothing": 0.1, "reduction": r})
        case("smoothing0.2+ignoreIndex1", (6, 4), "index",
             {"labelSmoothing": 0.2, "ignoreIndex": 1, "reduction": r})
        case("weight+smoothing0.2+ignoreIndex1", (2, 4, 2, 3), "index",
             {"weight": weight_for(4), "labelSmoothing": 0.2, "ignoreIndex": 1, "reduction": r})
        case("smoothing0.1", (2, 5, 3, 7), "index", {"labelSmoothing": 0.1, "reduction": r})
        case("smoothing0.1", (2, 130), "index", {"labelSmoothing": 0.1, "reduction": r})
        case("smoothing0.25", (6,), "index", {"labelSmoothing": 0.25, "reduction": r})
        case("weight+smoothing0.25", (6,), "prob",
             {"weight": weight_for(6), "labelSmoothing": 0.25, "reduction": r})

    # G. N = 0 and empty spatial dimensions
    for r in R:
        case("N0", (0, 5), "index", {"reduction": r})
        case("N0", (0, 5), "prob", {"reduction": r})
        case("weight+N0", (0, 5), "index", {"weight": weight_for(5), "reduction": r})
        case("smoothing0.1+N0", (0, 5), "index", {"labelSmoothing": 0.1, "reduction": r})
        case("empty-spatial", (2, 3, 0), "index", {"reduction": r})
        case("empty-spatial", (2, 3, 0), "prob", {"reduction": r})
        case("empty-spatial", (2, 3, 4, 0), "index", {"reduction": r})
    case("weight+smoothing0.1+N0", (0, 5), "index",
         {"weight": weight_for(5), "labelSmoothing": 0.1, "reduction": "mean"})

    # H. all targets ignored
    for r in R:
        shape = (3, 4)
        t = torch.full((3,), -100, dtype=torch.long)
        case("all-ignored", shape, "index", {"reduction": r}, t=t)
        case("weight+all-ignored", shape, "index", {"weight": weight_for(4), "reduction": r}, t=t)
        case("smoothing0.1+all-ignored", shape, "index", {"labelSmoothing": 0.1, "reduction": r}, t=t)
        case("weight+smoothing0.1+all-ignored", shape, "index",
             {"weight": weight_for(4), "labelSmoothing": 0.1, "reduction": r}, t=t)
        case("all-ignored", (4,), "index", {"reduction": r}, t=torch.tensor(-100))
        case("all-ignoredIndex2", (2, 3, 2), "index", {"ignoreIndex": 2, "reduction": r},
             t=torch.full((2, 2), 2, dtype=torch.long))

    # I. +-Infinity and NaN logits
    x_inf = torch.tensor([[INF, 0.0, 1.0],      # +inf in a row -> NaN
                          [-INF, 0.0, 1.0],     # -inf on a non-target class
                          [NAN, 0.0, 1.0],      # NaN
                          [-INF, 0.0, 1.0],     # -inf on the target class -> loss inf
                          [INF, INF, 0.0],      # two +inf
                          [-INF, -INF, -INF],   # all -inf
                          [1.0, 2.0, 3.0],      # finite, ignored
                          [0.5, -INF, 2.0]],    # -inf on a non-target, finite row
                         dtype=F32)
    t_inf = torch.tensor([1, 1, 0, 0, 0, 0, -100, 2])
    for r in R:
        case("inf-nan-rows", (8, 3), "index", {"reduction": r}, x=x_inf, t=t_inf)
        case("smoothing0.1+inf-nan-rows", (8, 3), "index", {"labelSmoothing": 0.1, "reduction": r},
             x=x_inf, t=t_inf)
        case("weight+inf-nan-rows", (8, 3), "index", {"weight": [0.5, 2.0, 1.5], "reduction": r},
             x=x_inf, t=t_inf)
    # finite-result rows only (so mean/sum stay finite), -inf logits
    x_ninf = torch.tensor([[-INF, 0.0, 1.0], [0.5, -INF, 2.0], [3.0, 1.0, -INF], [-INF, -INF, 4.0]], dtype=F32)
    t_ninf = torch.tensor([1, 2, 0, 2])
    for r in R:
        case("neg-inf-nontarget", (4, 3), "index", {"reduction": r}, x=x_ninf, t=t_ninf)
        case("smoothing0.1+neg-inf-nontarget", (4, 3), "index", {"labelSmoothing": 0.1, "reduction": r},
             x=x_ninf, t=t_ninf)
        p_ninf = torch.tensor([[0.0, 0.3, 0.7], [0.2, 0.0, 0.8], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=F32)
        case("neg-inf-zero-prob", (4, 3), "prob", {"reduction": r}, x=x_ninf, t=p_ninf)
        p_bad = torch.tensor([[0.1, 0.2, 0.7], [0.2, 0.0, 0.8], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=F32)
        case("neg-inf-nonzero-prob", (4, 3), "prob", {"reduction": r}, x=x_ninf, t=p_bad)
        case("inf-nan-rows", (8, 3), "prob", {"reduction": r}, x=x_inf,
             t=torch.softmax(fx.randn((8, 3)), 1).to(F32))
    # NaN / inf logits in ignored positions (the gradient of an ignored row still sees them)
    x_ign = torch.tensor([[NAN, 0.0, 1.0], [1.0, 2.0, 3.0], [INF, 0.0, 0.0], [-INF, 1.0, 0.0]], dtype=F32)
    t_ign = torch.tensor([-100, 0, -100, -100])
    for r in R:
        case("nonfinite-in-ignored-rows", (4, 3), "index", {"reduction": r}, x=x_ign, t=t_ign)
        case("smoothing0.2+nonfinite-in-ignored-rows", (4, 3), "index",
             {"labelSmoothing": 0.2, "reduction": r}, x=x_ign, t=t_ign)
    # spatial with a NaN / inf position
    xs = fx.randn((2, 3, 4))
    xs[0, 1, 2] = NAN
    xs[1, 0, 1] = INF
    xs[1, 2, 3] = -INF
    for r in R:
        case("nonfinite-spatial", (2, 3, 4), "index", {"reduction": r}, x=xs,
             t=torch.tensor([[0, 1, 2, 0], [2, 1, 0, 0]]))

    # J. large logits
    x_big = torch.tensor([[1e4, -1e4, 0.0, 5.0, 1e4],
                          [80.0, -80.0, 80.0, 0.0, -80.0],
                          [-1e4, -1e4, -1e4, -1e4, -1e4],
                          [1e4, 0.0, 0.0, 0.0, 0.0],
                          [-80.0, 80.0, -80.0, 79.5, 0.0],
                          [30.0, -30.0, 15.0, 0.0, -1e4]], dtype=F32)
    t_big = torch.tensor([1, 2, 3, 0, 3, 4])
    for r in R:
        case("large-logits", (6, 5), "index", {"reduction": r}, x=x_big, t=t_big)
        case("smoothing0.1+large-logits", (6, 5), "index", {"labelSmoothing": 0.1, "reduction": r},
             x=x_big, t=t_big)
        case("weight+smoothing0.3+large-logits", (6, 5), "index",
             {"weight": weight_for(5), "labelSmoothing": 0.3, "reduction": r}, x=x_big, t=t_big)
        case("large-logits", (6, 5), "prob", {"reduction": r}, x=x_big, t=prob_target((6, 5)))
        case("large-logits", (2, 5, 3, 7), "index", {"reduction": r}, x=fx.randn((2, 5, 3, 7), 80.0))

    # huge equal maxima: PyTorch's log_softmax is (x - max) - log(sum), so ln 2 survives where
    # max + log(sum) would round to max (1e20 + 0.69 == 1e20 even in float64)
    x_huge = torch.tensor([[1e20, 1e20, 0.0, -5.0],
                           [1e30, -1e30, 1e30, 1e30],
                           [-1e30, -1e30, -1e30, -1e30],
                           [3e20, 3e20, 3e20, 1.0],
                           [2.0, 1e25, 1e25, 0.0]], dtype=F32)
    t_huge = torch.tensor([0, 2, 1, 3, 1])
    for r in R:
        case("huge-equal-maxima", (5, 4), "index", {"reduction": r}, x=x_huge, t=t_huge)
        case("smoothing0.2+weight+huge-equal-maxima", (5, 4), "index",
             {"labelSmoothing": 0.2, "weight": [0.5, 2.0, 1.0, 1.5], "reduction": r}, x=x_huge, t=t_huge)
        case("huge-equal-maxima", (5, 4), "prob", {"reduction": r}, x=x_huge, t=prob_target((5, 4)))
    xs_huge = fx.randn((2, 3, 4))
    xs_huge[0, :2, 1] = 1e20
    xs_huge[1, :, 3] = -1e30
    case("huge-equal-maxima-spatial", (2, 3, 4), "index", {"labelSmoothing": 0.1, "reduction": "none"},
         x=xs_huge, t=torch.tensor([[0, 1, 2, 0], [2, 1, 0, 2]]))
    # several blocks (rows of > 1024 classes, spatial > 256): the maxima in different blocks
    x_rb = fx.randn((1, 1100))
    x_rb[0, 5] = 1e20
    x_rb[0, 1099] = 1e20
    case("huge-equal-maxima-blocks", (1, 1100), "index", {"labelSmoothing": 0.1, "reduction": "sum"},
         x=x_rb, t=torch.tensor([5]))
    x_sb = fx.randn((1, 300, 2))
    x_sb[0, 3, :] = 1e20
    x_sb[0, 290, :] = 1e20
    case("huge-equal-maxima-blocks", (1, 300, 2), "index", {"reduction": "none"},
         x=x_sb, t=torch.tensor([[3, 290]]))
    # rows of only -Infinity that get no gradient (ignored, gradOutput 0, weight 0): PyTorch's
    # softmax there is NaN (x - max = -inf + inf), so its `0 - exp(logp)·0` is NaN too
    x_ninf_rows = torch.tensor([[-INF, -INF, -INF], [1.0, 2.0, 3.0], [-INF, -INF, -INF], [-INF, -INF, -INF]],
                               dtype=F32)
    for r in R:
        case("all-neg-inf-ignored-row", (4, 3), "index", {"reduction": r}, x=x_ninf_rows,
             t=torch.tensor([-100, 0, -100, -100]))
        case("weight0+all-neg-inf-row", (4, 3), "index", {"weight": [0.0, 1.0, 2.0], "reduction": r},
             x=x_ninf_rows, t=torch.tensor([0, 1, -100, 0]))
    case("gradOutput0+all-neg-inf-row", (4, 3), "index", {"reduction": "none"}, x=x_ninf_rows,
         t=torch.tensor([1, 0, -100, 2]), grad_out=torch.tensor([0.0, 1.0, 1.0, 0.0]))
    x_ninf_sp = fx.randn((2, 3, 2))
    x_ninf_sp[0, :, 1] = -INF
    case("all-neg-inf-ignored-position-spatial", (2, 3, 2), "index", {"labelSmoothing": 0.1, "reduction": "sum"},
         x=x_ninf_sp, t=torch.tensor([[0, -100], [2, 1]]))

    # K. gradOutput other than 1
    case("gradOutput0.5", (4, 6), "index", {"reduction": "mean"}, grad_out=0.5)
    case("gradOutput-2", (4, 6), "index", {"reduction": "sum"}, grad_out=-2.0)
    case("weight+gradOutput-2", (2, 4, 3), "index", {"weight": weight_for(4), "reduction": "mean"},
         grad_out=-2.0, ignore=-100, p_ignore=0.3)
    case("smoothing0.1+gradOutput0.5", (4, 6), "prob", {"labelSmoothing": 0.1, "reduction": "mean"},
         grad_out=0.5)
    case("gradOutput3", (2, 5, 3, 7), "index", {"reduction": "sum"}, grad_out=3.0)
    case("gradOutput0", (3, 4), "index", {"reduction": "mean"}, grad_out=0.0)

    # L. errors (exact PyTorch messages)
    def err(tag, opts, x, t, kind):
        fx.add_error(f"ce/error/{tag}", opts, x, t, kind, ce_fn(opts))
    err("target-out-of-bounds", {}, fx.randn((2, 5)), torch.tensor([1, 7]), "index")
    err("negative-target-out-of-bounds", {}, fx.randn((2, 5)), torch.tensor([1, -1]), "index")
    err("target-out-of-bounds-spatial", {}, fx.randn((2, 5, 3)), torch.tensor([[1, 7, 0], [0, 0, 0]]), "index")
    err("target-out-of-bounds-unbatched", {}, fx.randn((5,)), torch.tensor(7), "index")
    err("default-ignore-out-of-bounds-with-ignoreIndex1", {"ignoreIndex": 1}, fx.randn((3, 5)),
        torch.tensor([1, 2, -100]), "index")
    err("batch-size-mismatch", {}, fx.randn((3, 5)), torch.tensor([1, 2]), "index")
    err("weight-wrong-length", {"weight": [1.0, 1.0, 1.0, 1.0]}, fx.randn((3, 5)), torch.tensor([1, 2, 3]), "index")
    err("weight-wrong-length-prob", {"weight": [1.0, 1.0, 1.0, 1.0]}, fx.randn((3, 5)),
        torch.softmax(fx.randn((3, 5)), 1).to(F32), "prob")
    err("label-smoothing-above-1", {"labelSmoothing": 1.5}, fx.randn((3, 5)), torch.tensor([1, 2, 3]), "index")
    err("prob-target-with-ignoreIndex0", {"ignoreIndex": 0}, fx.randn((3, 5)),
        torch.softmax(fx.randn((3, 5)), 1).to(F32), "prob")
    err("spatial-target-shape-mismatch", {}, fx.randn((2, 5, 3, 4)), torch.zeros((2, 3, 5), dtype=torch.long), "index")
    err("spatial-target-shape-mismatch-3d", {}, fx.randn((2, 5, 3)), torch.zeros((2, 4), dtype=torch.long), "index")
    err("unbatched-target-shape-mismatch", {}, fx.randn((5,)), torch.tensor([1, 2]), "index")
    return fx


# ----------------------------------------------------------------------------
# NLLLoss
# ----------------------------------------------------------------------------

def nll_fn(opts):
    def fn(x, t):
        kw = {"reduction": opts.get("reduction", "mean")}
        if "weight" in opts:
            kw["weight"] = torch.tensor(opts["weight"], dtype=x.dtype)
        if "ignoreIndex" in opts:
            kw["ignore_index"] = opts["ignoreIndex"]
        return F.nll_loss(x, t, **kw)
    return fn


def gen_nll():
    fx = Fixture("nll.json", "NLLLoss", seed=2002)
    R = ["none", "mean", "sum"]

    def idx_target(shape, ignore=None, p_ignore=0.0):
        C = shape[class_axis(shape)]
        t = fx.randint(0, C, index_target_shape(shape))
        if ignore is not None and p_ignore > 0 and t.numel() > 1:
            m = fx.mask(t.shape, p_ignore)
            m.view(-1)[0] = True
            m.view(-1)[-1] = False
            t = torch.where(m, torch.full_like(t, ignore), t)
        return t

    def logprobs(shape, scale=1.0):
        return torch.log_softmax(fx.randn(shape, scale), dim=class_axis(shape)).to(F32)

    def weight_for(C):
        return f32_list((fx.rand([C]) * 2.0 + 0.1).tolist())

    def case(tag, shape, opts, x=None, t=None, grad_out=None, **tkw):
        r = opts.get("reduction", "mean")
        if x is None:
            x = logprobs(shape, 3.0)
        if t is None:
            t = idx_target(shape, **tkw)
        fx.add(f"nll/{tag}/{shape_str(shape)}/{r}", opts, x, t, "index", nll_fn(opts), r, grad_out=grad_out)

    for shape in [(5,), (4, 6), (4, 37), (2, 130), (2, 4, 3), (2, 3, 4, 5), (2, 5, 3, 7)]:
        for r in R:
            case("plain", shape, {"reduction": r})
    case("defaults", (4, 6), {})
    case("raw-scores", (4, 6), {"reduction": "mean"}, x=fx.randn((4, 6), 5.0))
    for shape in [(4, 6), (2, 3, 4, 5), (6,)]:
        C = shape[class_axis(shape)]
        for r in R:
            case("weight", shape, {"weight": weight_for(C), "reduction": r})
    for shape in [(6, 5), (2, 3, 4, 5)]:
        C = shape[1]
        for r in R:
            case("ignore-100", shape, {"reduction": r}, ignore=-100, p_ignore=0.3)
            case("weight+ignore-100", shape, {"weight": weight_for(C), "reduction": r},
                 ignore=-100, p_ignore=0.3)
            case("ignoreIndex2", shape, {"ignoreIndex": 2, "reduction": r})
            case("weight+ignoreIndex2", shape, {"weight": weight_for(C), "ignoreIndex": 2, "reduction": r})
    for r in R:
        case("all-ignored", (3, 4), {"reduction": r}, t=torch.full((3,), -100, dtype=torch.long))
        case("weight+all-ignored", (3, 4), {"weight": weight_for(4), "reduction": r},
             t=torch.full((3,), -100, dtype=torch.long))
        case("all-ignored", (4,), {"reduction": r}, t=torch.tensor(-100))
        case("all-ignored", (2, 3, 2, 2), {"ignoreIndex": 1, "reduction": r},
             t=torch.ones((2, 2, 2), dtype=torch.long))
        case("N0", (0, 4), {"reduction": r})
        case("empty-spatial", (2, 3, 0), {"reduction": r})
        x = torch.tensor([[-INF, -1.0, NAN], [-0.5, -INF, -2.0], [NAN, NAN, -0.1]], dtype=F32)
        case("nonfinite", (3, 3), {"reduction": r}, x=x, t=torch.tensor([0, 0, 2]))
        case("nan-in-ignored", (3, 3), {"reduction": r}, x=x, t=torch.tensor([1, 0, -100]))
    case("gradOutput-2", (4, 6), {"reduction": "mean"}, grad_out=-2.0)
    case("weight+gradOutput0.5", (2, 3, 4, 5), {"weight": weight_for(3), "reduction": "sum"}, grad_out=0.5)

    def err(tag, opts, x, t):
        fx.add_error(f"nll/error/{tag}", opts, x, t, "index", nll_fn(opts))
    err("target-out-of-bounds", {}, logprobs((2, 5)), torch.tensor([1, 7]))
    err("target-out-of-bounds-spatial", {}, logprobs((2, 5, 3, 3)), torch.full((2, 3, 3), 7))
    err("batch-size-mismatch", {}, logprobs((3, 5)), torch.tensor([1, 2]))
    err("weight-wrong-length", {"weight": [1.0, 1.0]}, logprobs((3, 5)), torch.tensor([1, 2, 3]))
    return fx


# ----------------------------------------------------------------------------
# BCEWithLogitsLoss / BCELoss
# ----------------------------------------------------------------------------

def tensor_option(t):
    """1-D weights as plain lists, other shapes as {shape, data}."""
    t = t.to(F32)
    if t.dim() == 1:
        return [float(v) for v in t.tolist()]
    return tensor_json(t)


def bcel_fn(opts, weight=None, pos_weight=None):
    def fn(x, t):
        kw = {"reduction": opts.get("reduction", "mean")}
        if weight is not None:
            kw["weight"] = weight.to(x.dtype)
        if pos_weight is not None:
            kw["pos_weight"] = pos_weight.to(x.dtype)
        return F.binary_cross_entropy_with_logits(x, t, **kw)
    return fn


def gen_bce_with_logits():
    fx = Fixture("bce_with_logits.json", "BCEWithLogitsLoss", seed=3003)
    R = ["none", "mean", "sum"]

    def binary(shape):
        return (fx.rand(shape) < 0.4).to(F32)

    def soft(shape):
        return fx.rand(shape)

    def case(tag, shape, kind, opts_extra=None, weight=None, pos_weight=None, x=None, t=None,
             reduction="mean", scale=3.0, grad_out=None, default_reduction=False):
        opts = {}
        if weight is not None:
            opts["weight"] = tensor_option(weight)
        if pos_weight is not None:
            opts["posWeight"] = tensor_option(pos_weight)
        if not default_reduction:
            opts["reduction"] = reduction
        if x is None:
            x = fx.randn(shape, scale)
        if t is None:
            t = binary(shape) if kind == "binary" else soft(shape)
        fx.add(f"bcel/{kind}/{tag}/{shape_str(shape)}/{reduction}", opts, x, t, "prob",
               bcel_fn(opts, weight, pos_weight), reduction, grad_out=grad_out)

    for shape in [(5,), (3, 4), (4, 37), (2, 130), (2, 3, 4, 4), (2, 5, 3, 7), ()]:
        for r in R:
            case("plain", shape, "binary", reduction=r, scale=[1.0, 5.0, 30.0][len(shape) % 3])
    case("defaults", (3, 4), "binary", default_reduction=True)
    for shape in [(5,), (3, 4), (2, 5, 3, 7)]:
        for r in R:
            case("plain", shape, "soft", reduction=r)
    for r in R:
        case("weight(C)", (3, 4), "binary", weight=fx.rand((4,)) * 2, reduction=r)
        case("weight(N,1)", (3, 4), "binary", weight=fx.rand((3, 1)) * 2, reduction=r)
        case("weight(N,C)", (3, 4), "soft", weight=fx.rand((3, 4)) * 2, reduction=r)
        case("weight(1)", (3, 4), "binary", weight=fx.rand((1,)) * 2, reduction=r)
        case("weight(C,1,1)", (2, 3, 4, 4), "binary", weight=fx.rand((3, 1, 1)) * 2, reduction=r)
        case("posWeight(C)", (3, 4), "binary", pos_weight=fx.rand((4,)) * 3, reduction=r)
        case("posWeight(C)", (3, 4), "soft", pos_weight=fx.rand((4,)) * 3, reduction=r)
        case("posWeight(C)", (4, 37), "binary", pos_weight=fx.rand((37,)) * 3, reduction=r)
        case("posWeight(1)", (3, 4), "binary", pos_weight=torch.tensor([2.5]), reduction=r)
        case("posWeight(C,1,1)", (2, 3, 4, 4), "binary", pos_weight=fx.rand((3, 1, 1)) * 3, reduction=r)
        case("posWeight(C,1,1)", (2, 3, 4, 4), "soft", pos_weight=fx.rand((3, 1, 1)) * 3, reduction=r)
        case("weight(C)+posWeight(C)", (3, 4), "binary", weight=fx.rand((4,)) * 2,
             pos_weight=fx.rand((4,)) * 3, reduction=r)
        case("weight(N,1)+posWeight(C)", (5, 4), "soft", weight=fx.rand((5, 1)) * 2,
             pos_weight=fx.rand((4,)) * 3, reduction=r)
        case("weight(C,1,1)+posWeight(C,1,1)", (2, 3, 2, 5), "binary", weight=fx.rand((3, 1, 1)) * 2,
             pos_weight=fx.rand((3, 1, 1)) * 3, reduction=r)
        case("posWeight(C)-unbatched", (6,), "binary", pos_weight=fx.rand((6,)) * 3, reduction=r)
    # extreme logits
    x_ext = torch.tensor([[100.0, -100.0, 1e4, -1e4, 0.0, 20.0],
                          [-100.0, 100.0, -1e4, 1e4, -20.0, 88.0],
                          [100.0, -100.0, 1e4, -1e4, 17.0, -17.0]], dtype=F32)
    t_bin = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0, 1.0],
                          [1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
                          [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]], dtype=F32)
    t_soft = torch.tensor([[0.3, 0.7, 0.5, 0.25, 0.9, 0.1],
                           [0.999, 0.001, 0.6, 0.4, 0.5, 0.5],
                           [0.0, 1.0, 0.75, 0.125, 0.2, 0.8]], dtype=F32)
    for r in R:
        case("extreme-logits", (3, 6), "binary", x=x_ext, t=t_bin, reduction=r)
        case("extreme-logits", (3, 6), "soft", x=x_ext, t=t_soft, reduction=r)
        case("posWeight(C)+extreme-logits", (3, 6), "binary", x=x_ext, t=t_bin,
             pos_weight=fx.rand((6,)) * 3, reduction=r)
        case("weight(C)+posWeight(C)+extreme-logits", (3, 6), "soft", x=x_ext, t=t_soft,
             weight=fx.rand((6,)) * 2, pos_weight=fx.rand((6,)) * 3, reduction=r)
        case("N0", (0, 4), "binary", reduction=r)
        case("posWeight(C)+N0", (0, 4), "binary", pos_weight=fx.rand((4,)) * 3, reduction=r)
        x_nf = torch.tensor([[NAN, 1.0, -2.0], [INF, -INF, 0.5]], dtype=F32)
        case("nonfinite-logits", (2, 3), "binary", x=x_nf, t=torch.tensor([[1.0, 0, 1], [0, 1, 1]]), reduction=r)
    case("gradOutput-2", (3, 4), "binary", reduction="mean", grad_out=-2.0)
    case("posWeight(C)+gradOutput0.5", (3, 4), "soft", pos_weight=fx.rand((4,)) * 3, reduction="sum",
         grad_out=0.5)
    return fx


def bce_fn(opts, weight=None):
    def fn(x, t):
        kw = {"reduction": opts.get("reduction", "mean")}
        if weight is not None:
            kw["weight"] = weight.to(x.dtype)
        return F.binary_cross_entropy(x, t, **kw)
    return fn


def gen_bce():
    fx = Fixture("bce.json", "BCELoss", seed=4004)
    R = ["none", "mean", "sum"]

    def probs(shape, scale=2.0):
        return torch.sigmoid(fx.randn(shape, scale)).to(F32)

    def case(tag, shape, kind, weight=None, x=None, t=None, reduction="mean", grad_out=None,
             default_reduction=False):
        opts = {}
        if weight is not None:
            opts["weight"] = tensor_option(weight)
        if not default_reduction:
            opts["reduction"] = reduction
        if x is None:
            x = probs(shape)
        if t is None:
            t = (fx.rand(shape) < 0.5).to(F32) if kind == "binary" else fx.rand(shape)
        fx.add(f"bce/{kind}/{tag}/{shape_str(shape)}/{reduction}", opts, x, t, "prob",
               bce_fn(opts, weight), reduction, grad_out=grad_out)

    for shape in [(5,), (3, 4), (4, 37), (2, 130), (2, 3, 2, 2), (2, 5, 3, 7), ()]:
        for r in R:
            case("plain", shape, "binary", reduction=r)
    case("defaults", (3, 4), "binary", default_reduction=True)
    for shape in [(5,), (3, 4)]:
        for r in R:
            case("plain", shape, "soft", reduction=r)
    x01 = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.5, 1e-30],
                        [0.0, 1.0, 1e-7, 0.99999994, 1e-45, 0.25]], dtype=F32)
    t01 = torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0, 1.0],
                        [0.5, 0.25, 1.0, 0.0, 1.0, 0.0]], dtype=F32)
    for r in R:
        case("zeros-and-ones", (2, 6), "soft", x=x01, t=t01, reduction=r)
        case("weight(C)+zeros-and-ones", (2, 6), "soft", x=x01, t=t01, weight=fx.rand((6,)) * 2, reduction=r)
        case("weight(C)", (3, 4), "binary", weight=fx.rand((4,)) * 2, reduction=r)
        case("weight(N,1)", (3, 4), "soft", weight=fx.rand((3, 1)) * 2, reduction=r)
        case("weight(N,C)", (3, 4), "binary", weight=fx.rand((3, 4)) * 2, reduction=r)
        case("weight(C,1,1)", (2, 3, 2, 2), "binary", weight=fx.rand((3, 1, 1)) * 2, reduction=r)
        case("saturated", (2, 130), "binary", x=probs((2, 130), 30.0), reduction=r)
        case("N0", (0, 3), "binary", reduction=r)
    case("gradOutput-2", (3, 4), "binary", reduction="mean", grad_out=-2.0)
    case("gradOutput0.5", (3, 4), "soft", reduction="sum", grad_out=0.5)

    def err(tag, x, t):
        opts = {"reduction": "mean"}
        fx.add_error(f"bce/error/{tag}", opts, x, t, "prob", bce_fn(opts))
    err("input-above-1", torch.tensor([0.5, 1.5]), torch.tensor([0.0, 1.0]))
    err("input-below-0", torch.tensor([0.5, -0.5]), torch.tensor([0.0, 1.0]))
    err("input-nan", torch.tensor([0.5, NAN]), torch.tensor([0.0, 1.0]))
    return fx


# ----------------------------------------------------------------------------
# FocalLoss (softmax; clcarwin/focal_loss_pytorch generalised)
# ----------------------------------------------------------------------------

def alpha_vector(alpha, C, dtype):
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)):
        assert C == 2
        return torch.tensor([alpha, 1 - alpha], dtype=dtype)
    assert len(alpha) == C
    return torch.tensor(alpha, dtype=dtype)


def flatten_classes(x):
    """(N,C) -> (N,C); (N,C,d1..dK) -> (N*d1*..*dK, C), as the module does."""
    N, C = x.shape[0], x.shape[1]
    if x.dim() > 2:
        x = x.reshape(N, C, -1).transpose(1, 2).contiguous().reshape(-1, C)
    return x


def unflatten_classes(g, shape):
    N, C = shape[0], shape[1]
    if len(shape) > 2:
        g = g.reshape(N, -1, C).transpose(1, 2).contiguous()
    return g.reshape(shape)


def focal_options(o):
    reduction = o.get("reduction", "mean")
    if "sizeAverage" in o:
        reduction = "mean" if o["sizeAverage"] else "sum"
    return (o.get("gamma", 2.0), o.get("alpha"), o.get("weight"), o.get("ignoreIndex", -100),
            reduction, o.get("gradient", "full"))


def focal_fn(opts):
    gamma, alpha, weight, ignore_index, reduction, gradient = focal_options(opts)

    def fn(x, t):
        C = x.shape[1]
        xi = flatten_classes(x)
        tf = t.reshape(-1)
        valid = tf != ignore_index
        ts = torch.where(valid, tf, torch.zeros_like(tf))
        logpt = F.log_softmax(xi, dim=1).gather(1, ts.view(-1, 1)).view(-1)
        pt = logpt.exp()
        if gradient == "detached":
            pt = pt.detach()          # the module's Variable(logpt.data.exp())
        a = alpha_vector(alpha, C, x.dtype)
        if a is not None:
            logpt = logpt * a.gather(0, ts)
        if weight is not None:
            wt = torch.tensor(weight, dtype=x.dtype).gather(0, ts)
            logpt = logpt * wt
        loss = -1 * (1 - pt) ** gamma * logpt
        loss = torch.where(valid, loss, torch.zeros_like(loss))
        if reduction == "none":
            return loss.reshape(t.shape)
        if reduction == "sum":
            return loss.sum()
        if weight is not None:
            denom = torch.where(valid, wt, torch.zeros_like(wt)).sum()
        else:
            denom = valid.sum().to(x.dtype)
        return loss.sum() / denom
    return fn


def focal_ref64(opts):
    """Closed-form float64 loss and gradient (exact limits where autograd gives 0*inf)."""
    gamma, alpha, weight, ignore_index, reduction, gradient = focal_options(opts)

    def ref(x, t, go):
        shape = x.shape
        C = shape[1]
        xi = flatten_classes(x.double())
        tf = t.reshape(-1)
        valid = tf != ignore_index
        ts = torch.where(valid, tf, torch.zeros_like(tf))
        onehot = F.one_hot(ts, C).to(F64)
        m = xi.max(dim=1, keepdim=True).values if xi.shape[0] else torch.zeros((0, 1), dtype=F64)
        e = torch.exp(xi - m)
        S = e.sum(dim=1)
        p = e / S.view(-1, 1)
        logp = F.log_softmax(xi, dim=1)
        xt = xi.gather(1, ts.view(-1, 1)).view(-1)
        t_is_max = xt == m.view(-1)
        # r = sum_{j != t} exp(x_j - x_t) when t is the arg max: then
        # log p_t = -log1p(r) and 1 - p_t = r / (1 + r) stay accurate even when r << 1e-16
        r = (e * (1 - onehot)).sum(dim=1)
        l = torch.where(t_is_max, -torch.log1p(r), logp.gather(1, ts.view(-1, 1)).view(-1))
        q = torch.where(t_is_max, r / (1 + r), -torch.expm1(l))   # 1 - p_t without cancellation
        pt = l.exp()
        qg = q ** gamma                          # 0**0 == 1
        c = torch.ones_like(l)
        a = alpha_vector(alpha, C, F64)
        if a is not None:
            c = c * a.gather(0, ts)
        if weight is not None:
            wt = torch.tensor(weight, dtype=F64).gather(0, ts)
            c = c * wt
        loss = -c * qg * l
        if gradient == "full":
            # d/dl [-(1-e^l)^g l] = -(q^g - g p_t l q^(g-1)) = -q^g (1 - g p_t (l/q))
            ratio = torch.where(q > 0, l / torch.where(q > 0, q, torch.ones_like(q)), -torch.ones_like(q))
            pl = torch.where(pt > 0, pt * ratio, torch.zeros_like(pt))   # p log p -> 0
            dldl = -c * qg * (1 - gamma * pl)
        else:
            dldl = -c * qg
        # onehot - p, with the target entry 1 - p_t taken as q (accurate near p_t = 1)
        diff = torch.where(onehot > 0, q.view(-1, 1).expand_as(p), -p)
        grow = dldl.view(-1, 1) * diff
        zero = torch.zeros_like(loss)
        loss = torch.where(valid, loss, zero)
        if reduction == "none":
            gi = go.reshape(-1)
            L = loss.reshape(t.shape)
        elif reduction == "sum":
            gi = go.expand(loss.shape)
            L = loss.sum()
        else:
            denom = torch.where(valid, wt, zero).sum() if weight is not None else valid.sum().double()
            L = loss.sum() / denom
            gi = (go / denom).expand(loss.shape)
        grad = torch.where(valid.view(-1, 1), gi.view(-1, 1) * grow, torch.zeros_like(grow))
        return L, unflatten_classes(grad, shape)
    return ref


def _limit_summary(dev_g, exp_grad):
    vals = [abs(float(exp_grad.reshape(-1)[i].item())) for i in dev_g]
    mx = max(vals) if vals else 0.0
    if mx == 0.0:
        return "all of them exactly 0"
    return f"all of magnitude <= {mx:.3g}, exactly 0 where the limit underflows float32"


def focal_deviation_text(gamma):
    def text(dev_l, dev_g, out, g, exp_loss, exp_grad):
        return (f"PyTorch's autograd gives NaN for {len(dev_g)} gradient element(s) (flat indices {dev_g}): "
                f"in those rows p_t rounds to exactly 1 in float32, so log p_t = 0 and the 'full' gradient "
                f"multiplies gamma*(1-p_t)^(gamma-1) = Infinity (gamma={gamma} < 1) by 0. We return the exact "
                f"finite limit instead, from the closed form with 1-p_t computed without cancellation "
                f"(-expm1(log p_t), or sum of the other classes' probabilities when the target is the arg max); "
                f"the expected values there are {_limit_summary(dev_g, exp_grad)}. The loss and all other "
                f"elements match PyTorch within tolerance.")
    return text


def focal_neginf_text(dev_l, dev_g, out, g, exp_loss, exp_grad):
    return (f"PyTorch autograd returns NaN for {len(dev_g)} gradient element(s) (flat indices {dev_g}) in "
            f"rows whose target logit is -Infinity (p_t = 0, log p_t = -inf, loss = +Infinity): the "
            f"'full' gradient term gamma*(1-p_t)^(gamma-1)*p_t*log p_t is evaluated as inf*0; we return "
            f"its exact limit (p_t*log p_t -> 0), so those rows get the finite gradient "
            f"-alpha_t*(onehot - softmax) of the log term, as in the 'detached' mode and CrossEntropyLoss.")


def gen_focal():
    fx = Fixture("focal.json", "FocalLoss", seed=5005)
    R = ["none", "mean", "sum"]
    scales = [1.0, 5.0, 30.0]
    sc_i = [0]

    def next_scale():
        s = scales[sc_i[0] % len(scales)]
        sc_i[0] += 1
        return s

    def idx_target(shape, ignore=None, p_ignore=0.0):
        C = shape[1]
        t = fx.randint(0, C, index_target_shape(shape))
        if ignore is not None and p_ignore > 0 and t.numel() > 1:
            m = fx.mask(t.shape, p_ignore)
            m.view(-1)[0] = True
            m.view(-1)[-1] = False
            t = torch.where(m, torch.full_like(t, ignore), t)
        return t

    def case(tag, shape, opts, x=None, t=None, grad_out=None, deviation=None, check_ce=False, **tkw):
        gamma, _, _, _, r, gradient = focal_options(opts)
        auto = focal_deviation_text(gamma) if (0 < gamma < 1 and gradient == "full") else None
        if x is None:
            s = next_scale()
            x = fx.randn(shape, min(s, 5.0) if auto else s)
        if t is None:
            t = idx_target(shape, **tkw)
        fn = focal_fn(opts)
        c = fx.add(f"focal/{tag}/{shape_str(shape)}/{r}", opts, x, t, "index", fn, r,
                   grad_out=grad_out, ref=focal_ref64(opts), deviation=deviation, auto_deviation=auto)
        if check_ce:
            # gamma = 0 without alpha must be CrossEntropyLoss (with the same weight / ignoreIndex)
            kw = {"reduction": r, "ignore_index": opts.get("ignoreIndex", -100)}
            if "weight" in opts:
                kw["weight"] = torch.tensor(opts["weight"], dtype=F32)
            xr = x.clone().requires_grad_(True)
            ce = F.cross_entropy(xr, t, **kw)
            go = torch.ones_like(ce) if r != "none" else torch.tensor(
                c["gradOutput"]["data"], dtype=F32).reshape(ce.shape)
            (gce,) = torch.autograd.grad(ce, xr, go)
            xr2 = x.clone().requires_grad_(True)
            fl = fn(xr2, t)
            (gfl,) = torch.autograd.grad(fl, xr2, go)
            assert torch.allclose(ce, fl, rtol=1e-5, atol=1e-6, equal_nan=True), (c["name"], ce, fl)
            assert torch.allclose(gce, gfl, rtol=1e-5, atol=1e-6, equal_nan=True), c["name"]

    def weight_for(C):
        return f32_list((fx.rand([C]) * 2.0 + 0.1).tolist())

    # full product: gamma x alpha x gradient x reduction
    alist4 = [0.25, 0.5, 0.75, 1.0]
    for gamma in [0, 0.5, 1, 2, 5]:
        for alpha in [None, 0.25, "list"]:
            for gradient in ["full", "detached"]:
                for r in R:
                    opts = {"gamma": gamma}
                    if alpha == "list":
                        opts["alpha"] = alist4
                        shape, atag = (5, 4), "alpha[list]"
                    elif alpha is None:
                        shape, atag = (5, 4), "no-alpha"
                    else:
                        opts["alpha"] = alpha
                        shape, atag = (6, 2), f"alpha{alpha}"
                    opts["reduction"] = r
                    opts["gradient"] = gradient
                    case(f"gamma{gamma}/{atag}/{gradient}", shape, opts,
                         check_ce=(gamma == 0 and alpha is None))
    # defaults (gamma 2, no alpha, mean, full) and sizeAverage
    case("defaults", (4, 5), {})
    case("sizeAverage-true", (4, 5), {"gamma": 2, "sizeAverage": True})
    case("sizeAverage-false", (4, 5), {"gamma": 2, "sizeAverage": False})
    case("sizeAverage-false/alpha0.25", (4, 2), {"gamma": 1, "alpha": 0.25, "sizeAverage": False})
    # integer-valued alpha lists, alpha 0 / 1 scalars
    case("alpha0", (4, 2), {"gamma": 2, "alpha": 0, "reduction": "sum"})
    case("alpha1", (4, 2), {"gamma": 2, "alpha": 1, "reduction": "mean"})
    # shapes: SIMD tails, long rows, spatial
    for shape in [(4, 37), (2, 130), (2, 5, 3, 7), (2, 3, 4), (3, 2, 5), (1, 4, 2, 2, 2)]:
        C = shape[1]
        for r in R:
            for gradient in ["full", "detached"]:
                case(f"gamma2/alpha[list]/{gradient}", shape,
                     {"gamma": 2, "alpha": f32_list((fx.rand([C]) * 0.9 + 0.05).tolist()),
                      "reduction": r, "gradient": gradient})
        case("gamma0.5/no-alpha/full", shape, {"gamma": 0.5, "reduction": "mean"})
    # weight (mean divides by sum of weight[t] over non-ignored positions)
    for r in R:
        case("gamma0/weight", (6, 4), {"gamma": 0, "weight": weight_for(4), "reduction": r}, check_ce=True)
        case("gamma0/weight+ignore-100", (2, 4, 3),
             {"gamma": 0, "weight": weight_for(4), "reduction": r}, check_ce=True, ignore=-100, p_ignore=0.3)
        for gradient in ["full", "detached"]:
            case(f"gamma2/weight/{gradient}", (6, 4),
                 {"gamma": 2, "weight": weight_for(4), "reduction": r, "gradient": gradient})
            case(f"gamma2/weight+alpha[list]+ignore-100/{gradient}", (2, 4, 3),
                 {"gamma": 2, "alpha": alist4, "weight": weight_for(4), "reduction": r, "gradient": gradient},
                 ignore=-100, p_ignore=0.3)
            case(f"gamma1/weight+alpha0.25/{gradient}", (6, 2),
                 {"gamma": 1, "alpha": 0.25, "weight": weight_for(2), "reduction": r, "gradient": gradient})
    # ignored positions
    for r in R:
        for gradient in ["full", "detached"]:
            case(f"gamma2/ignore-100/{gradient}", (8, 5), {"gamma": 2, "reduction": r, "gradient": gradient},
                 ignore=-100, p_ignore=0.3)
            case(f"gamma2/alpha[list]+ignore-100/{gradient}", (2, 4, 2, 3),
                 {"gamma": 2, "alpha": alist4, "reduction": r, "gradient": gradient}, ignore=-100, p_ignore=0.3)
            case(f"gamma0.5/alpha0.25+ignoreIndex1/{gradient}", (8, 2),
                 {"gamma": 0.5, "alpha": 0.25, "ignoreIndex": 1, "reduction": r, "gradient": gradient})
            case(f"gamma5/ignoreIndex0/{gradient}", (6, 3), {"gamma": 5, "ignoreIndex": 0, "reduction": r,
                                                             "gradient": gradient})
        case("gamma0/ignore-100", (8, 5), {"gamma": 0, "reduction": r}, check_ce=True, ignore=-100, p_ignore=0.3)
        # all ignored: mean -> NaN, gradient zeros
        case("gamma2/all-ignored", (3, 4), {"gamma": 2, "reduction": r}, t=torch.full((3,), -100, dtype=torch.long))
        case("gamma2/weight+all-ignored", (3, 4), {"gamma": 2, "weight": weight_for(4), "reduction": r},
             t=torch.full((3,), -100, dtype=torch.long))
        case("gamma2/N0", (0, 4), {"gamma": 2, "reduction": r})
        case("gamma2/empty-spatial", (2, 3, 0), {"gamma": 2, "reduction": r})

    # extreme logits; rows 0..2 saturate (p_t rounds to 1 in float32), rows 3..5 are hard / moderate
    x_sat = torch.tensor([[30.0, 0.0, -5.0, 1.0],
                          [1e4, 0.0, 0.0, -1e4],
                          [80.0, -80.0, 0.0, 79.0],
                          [-80.0, 80.0, 0.0, 1.0],
                          [0.0, 1e4, -1e4, 0.0],
                          [10.0, 0.0, 0.0, 0.0],
                          [1.0, 2.0, 3.0, 4.0]], dtype=F32)
    t_sat = torch.tensor([0, 0, 0, 0, 0, 0, 3])
    for gamma in [0, 1, 2, 5]:
        for gradient in ["full", "detached"]:
            for r in R:
                case(f"gamma{gamma}/extreme-logits/{gradient}", (7, 4),
                     {"gamma": gamma, "reduction": r, "gradient": gradient}, x=x_sat, t=t_sat)
    for r in R:
        case("gamma0.5/extreme-logits/detached", (7, 4),
             {"gamma": 0.5, "reduction": r, "gradient": "detached"}, x=x_sat, t=t_sat)
        case("gamma0.5/alpha[list]+extreme-logits/detached", (7, 4),
             {"gamma": 0.5, "alpha": alist4, "reduction": r, "gradient": "detached"}, x=x_sat, t=t_sat)
        # near saturation with gamma < 1 but p_t still < 1 in float32: torch is finite, no deviation
        x_near = torch.tensor([[10.0, 0.0, 0.0, 0.0], [12.0, 1.0, -1.0, 0.0], [6.0, 0.0, 0.0, 0.0],
                               [0.0, 14.0, 0.0, 0.0], [0.2, 0.1, 0.0, 0.3]], dtype=F32)
        t_near = torch.tensor([0, 0, 0, 1, 2])
        case("gamma0.5/near-saturation/full", (5, 4), {"gamma": 0.5, "reduction": r}, x=x_near, t=t_near)
        case("gamma0.25/alpha[list]+near-saturation/full", (5, 4),
             {"gamma": 0.25, "alpha": alist4, "reduction": r}, x=x_near, t=t_near)
        # deviations: gamma < 1, full gradient, p_t == 1 in float32
        case("gamma0.5/extreme-logits/full", (7, 4), {"gamma": 0.5, "reduction": r}, x=x_sat, t=t_sat,
             deviation=focal_deviation_text(0.5))
        case("gamma0.5/alpha[list]+extreme-logits/full", (7, 4),
             {"gamma": 0.5, "alpha": alist4, "reduction": r, "gradient": "full"}, x=x_sat, t=t_sat,
             deviation=focal_deviation_text(0.5))
    case("gamma0.25/weight+extreme-logits/full", (7, 4),
         {"gamma": 0.25, "weight": [0.5, 1.0, 2.0, 1.5], "reduction": "mean", "gradient": "full"},
         x=x_sat, t=t_sat, deviation=focal_deviation_text(0.25))
    x_sat2 = torch.tensor([[40.0, 0.0], [0.0, 40.0], [-3.0, 2.0], [25.0, -25.0]], dtype=F32)
    case("gamma0.5/alpha0.25+extreme-logits/full", (4, 2),
         {"gamma": 0.5, "alpha": 0.25, "reduction": "sum", "gradient": "full"},
         x=x_sat2, t=torch.tensor([0, 1, 1, 0]), deviation=focal_deviation_text(0.5))
    xs = fx.randn((2, 3, 2, 2))
    xs[0, 1, 0, 1] = 50.0
    xs[1, 2, 1, 1] = 1e4
    ts = fx.randint(0, 3, (2, 2, 2))
    ts[0, 0, 1] = 1
    ts[1, 1, 1] = 2
    ts[1, 0, 0] = -100
    for r in R:
        case("gamma0.5/extreme-logits-spatial+ignore-100/full", (2, 3, 2, 2), {"gamma": 0.5, "reduction": r},
             x=xs, t=ts, deviation=focal_deviation_text(0.5))
    # -inf / NaN logits
    x_nf = torch.tensor([[-INF, 0.0, 1.0],     # -inf at target: loss inf
                         [0.5, -INF, 2.0],     # -inf elsewhere: finite
                         [1.0, 2.0, 3.0]], dtype=F32)
    t_nf = torch.tensor([0, 2, 1])
    for r in R:
        case("gamma0/neg-inf-target/full", (3, 3), {"gamma": 0, "reduction": r}, x=x_nf, t=t_nf)
        case("gamma2/neg-inf-target/detached", (3, 3), {"gamma": 2, "reduction": r, "gradient": "detached"},
             x=x_nf, t=t_nf)
        case("gamma2/neg-inf-target/full", (3, 3), {"gamma": 2, "reduction": r}, x=x_nf, t=t_nf,
             deviation=focal_neginf_text)
        x_nan = torch.tensor([[NAN, 0.0, 1.0], [0.5, -INF, 2.0], [1.0, 2.0, 3.0]], dtype=F32)
        case("gamma2/nan-logit/full", (3, 3), {"gamma": 2, "reduction": r}, x=x_nan, t=torch.tensor([1, 0, 2]))
        case("gamma2/neg-inf-nontarget/full", (3, 3), {"gamma": 2, "reduction": r},
             x=torch.tensor([[-INF, 0.0, 1.0], [0.5, -INF, 2.0], [1.0, 2.0, -INF]], dtype=F32),
             t=torch.tensor([1, 0, 0]))
    # huge equal maxima: log p_t = (x_t - max) - log(sum) keeps ln 2 (see the cross-entropy cases)
    x_huge = torch.tensor([[1e20, 1e20, 0.0], [1e30, -1e30, 1e30], [-1e30, -1e30, -1e30], [2.0, 3e25, 3e25]],
                          dtype=F32)
    for r in R:
        for gamma, gradient in [(2, "full"), (2, "detached"), (0.5, "full")]:
            case(f"gamma{gamma}/huge-equal-maxima/{gradient}", (4, 3),
                 {"gamma": gamma, "reduction": r, "gradient": gradient}, x=x_huge, t=torch.tensor([0, 2, 1, 2]))
    # gradOutput other than 1
    case("gamma2/gradOutput0.5", (4, 5), {"gamma": 2, "reduction": "mean"}, grad_out=0.5)
    case("gamma2/alpha[list]/gradOutput-2/detached", (5, 4),
         {"gamma": 2, "alpha": alist4, "reduction": "sum", "gradient": "detached"}, grad_out=-2.0)
    case("gamma1/weight/gradOutput3", (2, 4, 3), {"gamma": 1, "weight": weight_for(4), "reduction": "mean"},
         grad_out=3.0, ignore=-100, p_ignore=0.3)
    return fx


# ----------------------------------------------------------------------------
# SigmoidFocalLoss (torchvision.ops.sigmoid_focal_loss)
# ----------------------------------------------------------------------------

def sf_params(o):
    alpha = o.get("alpha", 0.25)
    if alpha is None:
        alpha = -1.0
    return alpha, o.get("gamma", 2.0), o.get("reduction", "none")


def sigmoid_focal_fn(opts):
    alpha, gamma, reduction = sf_params(opts)

    def fn(x, t):
        return sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction)
    return fn


def sigmoid_focal_ref64(opts):
    alpha, gamma, reduction = sf_params(opts)

    def ref(x, t, go):
        x = x.double()
        t = t.double()
        p = torch.sigmoid(x)
        pn = torch.sigmoid(-x)                                    # 1 - p without cancellation
        ce = torch.clamp(x, min=0) - x * t + torch.log1p(torch.exp(-x.abs()))
        q = p * (1 - t) + t * pn                                  # 1 - p_t, sum of non-negative terms
        qg = q ** gamma
        at = alpha * t + (1 - alpha) * (1 - t) if alpha >= 0 else torch.ones_like(x)
        loss = at * ce * qg
        dq = p * pn * (1 - 2 * t)
        safe_q = torch.where(q > 0, q, torch.ones_like(q))
        term2 = torch.where(q > 0, gamma * ce * qg * dq / safe_q, torch.zeros_like(q))
        dldx = at * ((p - t) * qg + term2)
        if reduction == "none":
            return loss, dldx * go
        if reduction == "sum":
            return loss.sum(), dldx * go
        n = x.numel()
        return loss.sum() / n if n else loss.sum() / 0.0, dldx * (go / n if n else go)
    return ref


def sigmoid_deviation_text(gamma):
    def text(dev_l, dev_g, out, g, exp_loss, exp_grad):
        return (f"PyTorch's autograd gives NaN for {len(dev_g)} gradient element(s) (flat indices {dev_g}): "
                f"there the target is exactly 0 or 1 and the logit saturates so that p_t rounds to exactly 1 "
                f"in float32 (1-p_t == 0), and autograd multiplies the infinite derivative "
                f"gamma*(1-p_t)^(gamma-1) (gamma={gamma} < 1) by 0. We return the exact finite limit instead, "
                f"from the closed form with 1-p_t = p*(1-t) + t*sigmoid(-x) (no cancellation); the expected "
                f"values there are {_limit_summary(dev_g, exp_grad)}. The loss and all other elements match "
                f"PyTorch within tolerance.")
    return text


def gen_sigmoid_focal():
    fx = Fixture("sigmoid_focal.json", "SigmoidFocalLoss", seed=6006)
    R = ["none", "mean", "sum"]

    def binary(shape):
        return (fx.rand(shape) < 0.3).to(F32)

    def case(tag, shape, opts, kind="binary", x=None, t=None, scale=3.0, grad_out=None, deviation=None):
        _, gamma, r = sf_params(opts)
        auto = sigmoid_deviation_text(gamma) if 0 < gamma < 1 else None
        if x is None:
            x = fx.randn(shape, min(scale, 5.0) if auto else scale)
        if t is None:
            t = binary(shape) if kind == "binary" else fx.rand(shape)
        fx.add(f"sfocal/{kind}/{tag}/{shape_str(shape)}/{r}", opts, x, t, "prob",
               sigmoid_focal_fn(opts), r, grad_out=grad_out, ref=sigmoid_focal_ref64(opts),
               deviation=deviation, auto_deviation=auto)

    def atag(a):
        return "alpha-null" if a is None else f"alpha{a}"

    scales = [1.0, 5.0, 30.0]
    k = 0
    for alpha in [0.25, 0.5, -1, None]:
        for gamma in [0, 0.5, 1, 2, 5]:
            for r in R:
                case(f"{atag(alpha)}/gamma{gamma}", (4, 5), {"alpha": alpha, "gamma": gamma, "reduction": r},
                     scale=scales[k % 3])
                k += 1
    for alpha in [0.25, None]:
        for gamma in [0, 0.5, 1, 2, 5]:
            for r in R:
                case(f"{atag(alpha)}/gamma{gamma}", (3, 6), {"alpha": alpha, "gamma": gamma, "reduction": r},
                     kind="soft", scale=scales[k % 3])
                k += 1
    # defaults: alpha 0.25, gamma 2, reduction none
    case("defaults", (4, 5), {})
    case("defaults", (4, 5), {}, kind="soft")
    case("alpha0/gamma2", (4, 5), {"alpha": 0, "gamma": 2, "reduction": "sum"})
    case("alpha1/gamma2", (4, 5), {"alpha": 1, "gamma": 2, "reduction": "mean"})
    # shapes
    for shape in [(7,), (4, 37), (2, 130), (2, 5, 3, 7), (3, 1, 4, 4), ()]:
        for r in R:
            case("alpha0.25/gamma2", shape, {"alpha": 0.25, "gamma": 2, "reduction": r})
        case("alpha0.25/gamma2", shape, {"alpha": 0.25, "gamma": 2, "reduction": "mean"}, kind="soft")
    for r in R:
        case("alpha0.25/gamma2/empty", (0, 3), {"alpha": 0.25, "gamma": 2, "reduction": r})
    # extreme logits
    x_ext = torch.tensor([[20.0, -20.0, 100.0, -100.0, 1e4, -1e4, 0.0, 3.0],
                          [-20.0, 20.0, -100.0, 100.0, -1e4, 1e4, 17.0, -17.0]], dtype=F32)
    t_ext = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0],
                          [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]], dtype=F32)
    t_ext_soft = torch.tensor([[0.9, 0.1, 0.75, 0.25, 0.5, 0.5, 0.3, 0.999],
                               [0.001, 0.6, 0.4, 0.2, 0.8, 0.05, 0.5, 0.7]], dtype=F32)
    for r in R:
        for alpha in [0.25, None]:
            for gamma in [0, 1, 2, 5]:
                case(f"{atag(alpha)}/gamma{gamma}/extreme-logits", (2, 8),
                     {"alpha": alpha, "gamma": gamma, "reduction": r}, x=x_ext, t=t_ext)
            for gamma in [0.5, 2]:
                case(f"{atag(alpha)}/gamma{gamma}/extreme-logits", (2, 8),
                     {"alpha": alpha, "gamma": gamma, "reduction": r}, kind="soft", x=x_ext, t=t_ext_soft)
        # deviations: gamma < 1 with saturating binary targets
        for alpha in [0.25, 0.5, None]:
            case(f"{atag(alpha)}/gamma0.5/extreme-logits", (2, 8),
                 {"alpha": alpha, "gamma": 0.5, "reduction": r}, x=x_ext, t=t_ext,
                 deviation=sigmoid_deviation_text(0.5))
        case("alpha0.25/gamma0.25/extreme-logits", (2, 8),
             {"alpha": 0.25, "gamma": 0.25, "reduction": r}, x=x_ext, t=t_ext,
             deviation=sigmoid_deviation_text(0.25))
        # near saturation, gamma < 1, torch still finite: no deviation
        x_near = torch.tensor([8.0, -8.0, 12.0, -12.0, 15.0, -15.0, 5.0, -1.0], dtype=F32)
        t_near = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0], dtype=F32)
        case("alpha0.25/gamma0.5/near-saturation", (8,), {"alpha": 0.25, "gamma": 0.5, "reduction": r},
             x=x_near, t=t_near)
    xs = fx.randn((2, 5, 3, 7), 3.0)
    ts = binary((2, 5, 3, 7))
    xs[0, 1, 2, 3] = 40.0
    ts[0, 1, 2, 3] = 1.0
    xs[1, 4, 0, 6] = -60.0
    ts[1, 4, 0, 6] = 0.0
    case("alpha0.25/gamma0.5/saturating-spatial", (2, 5, 3, 7), {"alpha": 0.25, "gamma": 0.5, "reduction": "mean"},
         x=xs, t=ts, deviation=sigmoid_deviation_text(0.5))
    # gradOutput other than 1
    case("alpha0.25/gamma2/gradOutput-2", (4, 5), {"alpha": 0.25, "gamma": 2, "reduction": "mean"}, grad_out=-2.0)
    case("alpha-null/gamma1/gradOutput0.5", (4, 5), {"alpha": None, "gamma": 1, "reduction": "sum"},
         kind="soft", grad_out=0.5)
    return fx


# ----------------------------------------------------------------------------

def main():
    gens = [gen_cross_entropy, gen_nll, gen_bce_with_logits, gen_bce, gen_focal, gen_sigmoid_focal]
    total = 0
    for gen in gens:
        fx = gen()
        path = fx.write()
        size = path.stat().st_size
        total += size
        ndev = sum(1 for c in fx.cases if "deviation" in c)
        print(f"{path.relative_to(ROOT)}: {len(fx.cases)} cases, {len(fx.errors)} errors, "
              f"{ndev} deviations, {size / 1024:.1f} KiB")
    print(f"total {total / 1024:.1f} KiB")
    if WARNINGS:
        print(f"\n{len(WARNINGS)} precision warning(s) (float32 torch vs float64 reference):", file=sys.stderr)
        for w in WARNINGS:
            print("  " + w, file=sys.stderr)


if __name__ == "__main__":
    main()
