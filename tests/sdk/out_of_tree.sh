#!/usr/bin/env bash
# Out-of-tree SDK test: install DimpleDb into a temporary prefix, then, from
# that prefix alone (pkg-config files, headers, libraries):
#  - build the plugin template (sdk/template) and run the storage contract
#    suite on it, loaded through plugin_dir;
#  - build the example resolver (sdk/examples/resolver-max) and run the
#    resolver contract on it;
#  - build a tiny app against dimple.pc and run it.
set -euo pipefail
src=${DIMPLE_TEST_SRCDIR:?}
build=${DIMPLE_TEST_BUILDDIR:?}
tmp=$(mktemp -d /tmp/dimple-oot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); echo "not ok $n - $*"; echo "1..$n"; exit 1; }

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
  { sed 's/^/# /' "$tmp/install.log"; notok "meson install"; }
ok "meson install into a temporary prefix"

pc=$(find "$tmp/root" -name dimple-plugin.pc | head -1)
[ -n "$pc" ] || notok "dimple-plugin.pc installed"
pcdir=$(dirname "$pc")
# Relocate the .pc files to the temporary root, as a packager's sysroot would.
orig=$(sed -n 's/^prefix=//p' "$pc")
sed -i "s|^prefix=.*|prefix=$tmp/root$orig|" "$pcdir"/dimple*.pc
export PKG_CONFIG_PATH=$pcdir
pkg-config --exists dimple dimple-plugin || notok "pkg-config finds dimple and dimple-plugin"
ok "dimple.pc and dimple-plugin.pc installed"
plugindir=$(pkg-config --variable=plugindir dimple-plugin)
for p in memory file; do
  [ -f "$plugindir/dimple-$p.so" ] || notok "plugin $p installed in $plugindir"
done
ok "plugins installed in plugindir"
for f in include/dimple.h include/dimple/plugin.h include/dimple/common.h bin/dimple bin/dimple-storage-contract bin/dimple-resolver-contract share/man/man1/dimple.1 etc/dimple/dimple.conf.example; do
  [ -e "$tmp/root$orig/$f" ] || notok "$f installed"
done
ok "headers, CLI, contract runners, man page and example dimple.conf installed"

# Sanitizer flags of this build, so code we link against it matches.
san=$(meson introspect --buildoptions "$build" | python3 -c \
  'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="b_sanitize"))')
cflags=(); [ "$san" != none ] && cflags=(-fsanitize="$san")

meson setup "$tmp/tpl" "$src/sdk/template" >"$tmp/tpl.log" 2>&1 && ninja -C "$tmp/tpl" >>"$tmp/tpl.log" 2>&1 ||
  { sed 's/^/# /' "$tmp/tpl.log"; notok "template builds from the prefix alone"; }
ok "template builds from the installed SDK alone"
[ -d "$src/sdk/examples/resolver-max" ] || notok "sdk/examples/resolver-max exists"
meson setup "$tmp/res" "$src/sdk/examples/resolver-max" >"$tmp/res.log" 2>&1 && ninja -C "$tmp/res" >>"$tmp/res.log" 2>&1 ||
  { sed 's/^/# /' "$tmp/res.log"; notok "example resolver builds from the prefix alone"; }
ok "example resolver builds from the installed SDK alone"

# One plugin folder, as an app would ship it.
mkdir -p "$tmp/plugins"
cp "$tmp"/tpl/dimple-*.so "$tmp"/res/dimple-*.so "$tmp/plugins/"
resolver=$(basename "$(ls "$tmp"/res/dimple-*.so)" .so); resolver=${resolver#dimple-}

# The installed runners, given the plugin's file as an author would.
bin=$tmp/root$orig/bin
if env -u DIMPLE_PLUGIN_PATH "$bin/dimple-storage-contract" "$tmp/plugins/dimple-notes.so" path="$tmp/store" >"$tmp/c.log" 2>&1; then
  ok "storage contract passes on the template plugin ($(grep -c '^ok' "$tmp/c.log") checks)"
else
  grep -v '^ok' "$tmp/c.log" | sed 's/^/# /'; notok "storage contract on the template plugin"
fi
if DIMPLE_PLUGIN_PATH="$tmp/plugins" "$bin/dimple-resolver-contract" "$resolver" >"$tmp/r.log" 2>&1; then
  ok "resolver contract passes on the example resolver '$resolver'"
else
  grep -v '^ok' "$tmp/r.log" | sed 's/^/# /'; notok "resolver contract on the example resolver"
fi

# Loaded by the core through plugin_dir, as an app would: no
# DIMPLE_PLUGIN_PATH, only the configuration.
cat >"$tmp/dimple.conf" <<CONF
[dimple]
database = $tmp/app.db
plugin_dir = $tmp/plugins
[storage]
plugin = notes
path = $tmp/store2
[resolver]
plugin = $resolver
CONF
cat >"$tmp/app.c" <<'C'
#include <dimple.h>
#include <stdio.h>
#include <string.h>
static int count(void *payload, const char *key) { (void)key; ++*(int *)payload; return 0; }
int main(int argc, char **argv) {
    dimple *db = NULL; int n = 0;
    (void)argc;
    if (dimple_open(&db, argv[1]) != DIMPLE_OK) { printf("open: %s\n", dimple_errmsg(db)); return 1; }
    if (dimple_remote_list(db, "", count, &n) != DIMPLE_OK) { printf("list: %s\n", dimple_errmsg(db)); return 1; }
    printf("%s %s %s %d\n", dimple_version(), dimple_plugin_in_use(db, "storage"),
           dimple_plugin_in_use(db, "resolver"), n);
    dimple_close(db);
    return 0;
}
C
cc -std=c11 "${cflags[@]}" "$tmp/app.c" -o "$tmp/app" $(pkg-config --cflags --libs dimple) >"$tmp/app.log" 2>&1 ||
  { sed 's/^/# /' "$tmp/app.log"; notok "an app builds against dimple.pc"; }
ok "an app builds against dimple.pc"
libdir=$(pkg-config --variable=libdir dimple)
out=$(env -u DIMPLE_PLUGIN_PATH LD_LIBRARY_PATH="$libdir" "$tmp/app" "$tmp/dimple.conf" 2>&1) ||
  { echo "# $out"; notok "the app opens with the out-of-tree plugins"; }
case "$out" in *" notes $resolver 0") ok "the core loads both plugins through plugin_dir ($out)" ;;
  *) echo "# $out"; notok "app output: $out" ;; esac
echo "1..$n"
