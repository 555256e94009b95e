#include "ops/autocast.h"

#include <dnnl.h>

static _Atomic int requested; /* yt_autocast_set */

int yt_autocast_set(int enabled)
{
    int before = requested;
    requested = enabled ? 1 : 0;
    return before;
}

int yt_autocast_enabled(void) { return requested; }

/* the ISAs are bit sets, each containing the ones below it (avx2_vnni, 0x407, is numerically larger than
 * avx512_core_bf16 but lacks it) */
int yt_autocast_bf16_supported(void)
{
    static _Atomic int known; /* 0 = not asked yet, 1 = no, 2 = yes (oneDNN fixes its ISA at its first use) */
    int k = known;
    if (k == 0) {
        unsigned isa = (unsigned)dnnl_get_effective_cpu_isa(), bf16 = (unsigned)dnnl_cpu_isa_avx512_core_bf16;
        k = (isa & bf16) == bf16 ? 2 : 1;
        known = k;
    }
    return k == 2;
}

const char *yt_autocast_isa_name(void)
{
    static const struct {
        dnnl_cpu_isa_t isa;
        const char *name;
    } names[] = {
        {dnnl_cpu_isa_sse41, "sse41"},
        {dnnl_cpu_isa_avx, "avx"},
        {dnnl_cpu_isa_avx2, "avx2"},
        {dnnl_cpu_isa_avx512_mic, "avx512_mic"},
        {dnnl_cpu_isa_avx512_mic_4ops, "avx512_mic_4ops"},
        {dnnl_cpu_isa_avx512_core, "avx512_core"},
        {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"},
        {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
        {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"},
        {dnnl_cpu_isa_avx2_vnni, "avx2_vnni"},
    };
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].isa == isa) return names[i].name;
    return isa == dnnl_cpu_isa_all ? "no vector extensions" : "unknown";
}

int yt_autocast_active(void) { return requested && yt_autocast_bf16_supported(); }
