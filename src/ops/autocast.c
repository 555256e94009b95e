#include "ops/autocast.h"

#include "ops/conv2d_dnnl.h"

static _Atomic int requested; /* yt_autocast_set */

int yt_autocast_set(int enabled)
{
    int before = requested;
    requested = enabled ? 1 : 0;
    return before;
}

int yt_autocast_enabled(void) { return requested; }

/* oneDNN fixes its ISA at its first use: asked once */
int yt_autocast_bf16_supported(void)
{
    static _Atomic int known; /* 0 = not asked yet, 1 = no, 2 = yes */
    int k = known;
    if (k == 0) known = k = yt_conv2d_dnnl_isa_bf16() ? 2 : 1;
    return k == 2;
}

int yt_autocast_active(void) { return requested && yt_autocast_bf16_supported(); }
