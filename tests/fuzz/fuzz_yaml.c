/* libFuzzer harness for the YAML reader (io/yaml.h) that reads dataset and model files: libyaml's parser, the
 * tree with anchors, aliases and merge keys under the node budget, and the YAML 1.1 typing of every scalar
 * (yt_yaml_resolve, where the sexagesimal and float-to-int cases live). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "io/yaml.h"

static void resolve_all(const yt_yaml_node *n, int depth)
{
    if (depth > 10000) abort(); /* the reader bounds the depth well below this */
    if (n->kind == YT_YAML_SCALAR) {
        yt_yaml_value v;
        if (yt_yaml_resolve(n, "fuzz.yaml", &v) == 0 && v.type == YT_YAML_FLOAT && v.f != v.f && n->quoted) abort();
        (void)yt_yaml_plain_type(n->value, n->length);
        return;
    }
    for (int i = 0; i < n->count; i++) {
        if (n->kind == YT_YAML_MAP) {
            resolve_all(n->keys[i], depth + 1);
            if (n->keys[i]->kind == YT_YAML_SCALAR && !yt_yaml_get(n, n->keys[i]->value)) abort();
        }
        resolve_all(n->items[i], depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    yt_yaml_node *root = yt_yaml_load_string((const char *)data, size, "fuzz.yaml");
    if (root) {
        resolve_all(root, 0);
        yt_yaml_free(root);
    }
    yt_clear_error();
    return 0;
}
