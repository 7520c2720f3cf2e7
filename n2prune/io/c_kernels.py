"""The C helper functions of an exported network, each emitted only when a cell uses it.

Tensors in C are one image's (C, H, W) floats, row-major: a Fc input's
flattened index is n2prune's Fc column ``(c*H + y)*W + x``. The semantics are
n2prune's (N2D2's): average pooling divides by the whole window, padding
included; a max or average window lying wholly in the padding gives 0; a
Rectifier's clipping caps the positive side only. Everything is C99 with
``expf`` and ``tanhf`` as the only libm calls; no allocation.
"""

# name -> (helpers it calls, C text)
KERNELS = {
    "window": ((), """
/* A window over a (channels, height, width) input: convolution or pooling. */
typedef struct {
    int height, width, out_height, out_width;
    int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
} n2p_window;

/* Output positions o in [first, last] whose input o * stride + shift lies in [0, size). */
static int n2p_first(int shift, int stride)
{
    return shift >= 0 ? 0 : (-shift + stride - 1) / stride;
}

static int n2p_last(int shift, int stride, int size, int out)
{
    const int room = size - 1 - shift;
    if (room < 0)
        return -1;
    return room / stride < out - 1 ? room / stride : out - 1;
}
"""),
    "conv_tap": (("window",), """
/* One weight v at column j = (c * KH + ky) * KW + kx of an output plane y:
 * y[oy][ox] += v * x[c][oy * sh + ky * dh - ph][ox * sw + kx * dw - pw], in-bounds taps
 * only (zero padding). Walking the weights outside and the plane inside lets the
 * compressed forms skip every pruned weight. */
static void n2p_conv_tap(float *y, const float *x, int j, float v, const n2p_window *g)
{
    const int taps = g->kernel_h * g->kernel_w;
    const int c = j / taps, ky = j % taps / g->kernel_w, kx = j % g->kernel_w;
    const int dy = ky * g->dilation_h - g->pad_h, dx = kx * g->dilation_w - g->pad_w;
    const int y0 = n2p_first(dy, g->stride_h);
    const int y1 = n2p_last(dy, g->stride_h, g->height, g->out_height);
    const int x0 = n2p_first(dx, g->stride_w);
    const int x1 = n2p_last(dx, g->stride_w, g->width, g->out_width);
    const float *plane = x + (long)c * g->height * g->width;
    for (int oy = y0; oy <= y1; ++oy) {
        const float *row = plane + (long)(oy * g->stride_h + dy) * g->width;
        float *out = y + (long)oy * g->out_width;
        for (int ox = x0; ox <= x1; ++ox)
            out[ox] += v * row[ox * g->stride_w + dx];
    }
}
"""),
    "fill": ((), """
/* Each of the channels' planes set to its bias (0 without one). */
static void n2p_fill(float *y, int channels, int plane, const float *bias)
{
    for (int c = 0; c < channels; ++c)
        for (int i = 0; i < plane; ++i)
            y[(long)c * plane + i] = bias ? bias[c] : 0.0f;
}
"""),
    "activate": ((), """
enum { N2P_CLAMP, N2P_RECTIFIER, N2P_TANH, N2P_LOGISTIC, N2P_SWISH };

static float n2p_sigmoid(float x)
{
    /* exp of a non-positive number only: never overflows */
    const float e = expf(x >= 0.0f ? -x : x);
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

/* In place on n values. CLAMP: to [-a, a]; RECTIFIER: leak a, cap b (> 0);
 * TANH: tanh(a * x). */
static void n2p_activate(float *y, long n, int kind, float a, float b)
{
    for (long i = 0; i < n; ++i) {
        const float x = y[i];
        switch (kind) {
        case N2P_CLAMP: y[i] = x < -a ? -a : (x > a ? a : x); break;
        case N2P_RECTIFIER: y[i] = x > 0.0f ? (x < b ? x : b) : a * x; break;
        case N2P_TANH: y[i] = tanhf(a * x); break;
        case N2P_LOGISTIC: y[i] = n2p_sigmoid(x); break;
        default: y[i] = x * n2p_sigmoid(x); break;
        }
    }
}
"""),
    "pool": (("window",), """
/* Output o pools over the window and over its source channels src[start[o] ..
 * start[o + 1]) of x (start NULL: channel o alone). Max: first maximum; average:
 * the sum divided by (channels x window area), padding counted as N2D2 does; no
 * in-bounds element: 0. */
static void n2p_pool(const float *x, float *y, int outputs, int is_max, const n2p_window *g,
                     const uint16_t *start, const uint16_t *src)
{
    const long in_plane = (long)g->height * g->width, out_plane = (long)g->out_height * g->out_width;
    for (int o = 0; o < outputs; ++o) {
        const int s0 = start ? start[o] : o, s1 = start ? start[o + 1] : o + 1;
        for (int oy = 0; oy < g->out_height; ++oy) {
            const int iy0 = oy * g->stride_h - g->pad_h, iy1 = iy0 + g->kernel_h;
            for (int ox = 0; ox < g->out_width; ++ox) {
                const int ix0 = ox * g->stride_w - g->pad_w, ix1 = ix0 + g->kernel_w;
                float acc = 0.0f;
                int seen = 0;
                for (int s = s0; s < s1; ++s) {
                    const float *plane = x + (start ? src[s] : s) * in_plane;
                    for (int iy = iy0 < 0 ? 0 : iy0; iy < iy1 && iy < g->height; ++iy)
                        for (int ix = ix0 < 0 ? 0 : ix0; ix < ix1 && ix < g->width; ++ix) {
                            const float v = plane[(long)iy * g->width + ix];
                            if (!is_max)
                                acc += v;
                            else if (!seen || v > acc)
                                acc = v;
                            seen = 1;
                        }
                }
                if (!is_max && s1 > s0)
                    acc /= (float)(s1 - s0) * (float)(g->kernel_h * g->kernel_w);
                y[o * out_plane + (long)oy * g->out_width + ox] = acc;
            }
        }
    }
}
"""),
    "scale_shift": ((), """
/* y = x * scale[c] + shift[c] per channel (a BatchNorm folded at export). */
static void n2p_scale_shift(const float *x, float *y, int channels, long plane,
                            const float *scale, const float *shift)
{
    for (int c = 0; c < channels; ++c)
        for (long i = 0; i < plane; ++i)
            y[c * plane + i] = x[c * plane + i] * scale[c] + shift[c];
}
"""),
    "sum": ((), """
/* y (+)= w * x + s, w and s one value (per_channel 0) or one per channel. */
static void n2p_sum(float *y, const float *x, int channels, long plane, const float *w,
                    const float *s, int per_channel, int accumulate)
{
    for (int c = 0; c < channels; ++c) {
        const float wc = w[per_channel ? c : 0], sc = s[per_channel ? c : 0];
        for (long i = c * plane; i < (c + 1) * plane; ++i)
            y[i] = accumulate ? y[i] + (wc * x[i] + sc) : wc * x[i] + sc;
    }
}
"""),
    "prod_max": ((), """
/* y = y * x (is_max 0) or max(y, x), the first input winning ties. */
static void n2p_prod_max(float *y, const float *x, long n, int is_max)
{
    for (long i = 0; i < n; ++i)
        y[i] = is_max ? (x[i] > y[i] ? x[i] : y[i]) : y[i] * x[i];
}
"""),
    "pad": ((), """
/* Zero padding (negative top/left: cropping): y[c][oy][ox] = x[c][oy - top][ox - left]. */
static void n2p_pad(const float *x, float *y, int channels, int height, int width,
                    int out_height, int out_width, int top, int left)
{
    for (int c = 0; c < channels; ++c)
        for (int oy = 0; oy < out_height; ++oy)
            for (int ox = 0; ox < out_width; ++ox) {
                const int iy = oy - top, ix = ox - left;
                const int inside = iy >= 0 && iy < height && ix >= 0 && ix < width;
                y[((long)c * out_height + oy) * out_width + ox] =
                    inside ? x[((long)c * height + iy) * width + ix] : 0.0f;
            }
}
"""),
    "softmax": ((), """
/* Softmax over each group of consecutive channels, per pixel. */
static void n2p_softmax(const float *x, float *y, int channels, long plane, int group)
{
    for (int g0 = 0; g0 < channels; g0 += group)
        for (long p = 0; p < plane; ++p) {
            const float *xs = x + g0 * plane + p;
            float *ys = y + g0 * plane + p;
            float top = xs[0], sum = 0.0f;
            for (int c = 1; c < group; ++c)
                top = xs[c * plane] > top ? xs[c * plane] : top;
            for (int c = 0; c < group; ++c) {
                ys[c * plane] = expf(xs[c * plane] - top);
                sum += ys[c * plane];
            }
            for (int c = 0; c < group; ++c)
                ys[c * plane] /= sum;
        }
}
"""),
}


def kernel_source(used):
    """The C text of the ``used`` helpers and the helpers they call, in KERNELS order."""
    wanted, stack = set(), list(used)
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack.extend(KERNELS[name][0])
    return "".join(text for name, (_, text) in KERNELS.items() if name in wanted)
