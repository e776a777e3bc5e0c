#!/usr/bin/env python3
# Which parts of the node binary a process holds resident: its file-backed pages of the binary
# (/proc/PID/pagemap, root only), attributed to ELF sections and, by symbol (from an unstripped
# copy of the same binary, same addresses), to components: V8's compilers (Turbofan, Maglev,
# Sparkplug), V8's builtins, the rest of V8, ICU code and data, OpenSSL, Node, libuv, other.
#   python3 bench/binary-pages.py PID UNSTRIPPED_NODE
import bisect, re, struct, subprocess, sys
pid, unstripped = int(sys.argv[1]), sys.argv[2]
PAGE = 4096
exe = subprocess.run(['readlink', f'/proc/{pid}/exe'], capture_output=True, text=True).stdout.strip()
syms = []
for line in subprocess.run(['nm', '-S', '--defined-only', unstripped], capture_output=True, text=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 4:
        syms.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
syms.sort()
starts = [s[0] for s in syms]
sections = []
for line in subprocess.run(['readelf', '-SW', unstripped], capture_output=True, text=True).stdout.splitlines():
    m = re.match(r'\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)', line)
    if m and int(m.group(2), 16):
        sections.append((int(m.group(2), 16), int(m.group(3), 16), m.group(1)))
def component(name):
    for pattern, label in [(r'icudt\d+_dat', 'ICU data'), (r'_ZN2v88internal8compiler|_ZN2v88internal5turboshaft', 'V8 Turbofan/Turboshaft'),
                           (r'_ZN2v88internal6maglev', 'V8 Maglev'), (r'_ZN2v88internal8baseline', 'V8 Sparkplug'),
                           (r'_ZN2v88internal4wasm', 'V8 wasm'), (r'embedded_blob|Builtins_', 'V8 builtins (embedded)'),
                           (r'_ZN2v8|^v8_', 'V8 other'), (r'icu_|_ZN6icu_|^u[a-z]+_\w+_\d+$|_\d\d$', 'ICU code'),
                           (r'_ZN4node|^napi_|^node_', 'Node'), (r'^uv_|^uv__', 'libuv'),
                           (r'^ossl_|^EVP_|^SSL_|^X509|^OPENSSL|^BN_|^ASN1|^CRYPTO|^ERR_|^EC_|^RSA_|^aes|^sha|^ChaCha|^bsaes|^vpaes|^gcm|^PEM|^BIO', 'OpenSSL'),
                           (r'nghttp|llhttp|ada|simdutf|simdjson|brotli|zlib|deflate|inflate|ncrypto|_ZN3ada|_ZN7simdutf|zstd|uvwasi|cares|ares_|sqlite', 'other bundled libs')]:
        if re.search(pattern, name):
            return label
    return 'other'
totals, by_section, by_sym = {}, {}, {}
with open(f'/proc/{pid}/maps') as maps, open(f'/proc/{pid}/pagemap', 'rb') as pm:
    for line in maps:
        f = line.split()
        if len(f) < 6 or f[5] != exe:
            continue
        lo, hi = (int(x, 16) for x in f[0].split('-'))
        pm.seek(lo // PAGE * 8)
        data = pm.read((hi - lo) // PAGE * 8)
        for i in range((hi - lo) // PAGE):
            (entry,) = struct.unpack_from('<Q', data, i * 8)
            if not entry >> 63 & 1:
                continue
            addr = lo + i * PAGE
            sec = next((n for a, s, n in sections if a <= addr < a + max(s, 1)), '?')
            by_section[sec] = by_section.get(sec, 0) + PAGE
            k = bisect.bisect_right(starts, addr + PAGE // 2) - 1
            name = syms[k][2] if k >= 0 and syms[k][0] + syms[k][1] >= addr else ('(after) ' + syms[k][2] if k >= 0 and addr - syms[k][0] < (1 << 20) else '(no symbol)')
            comp = (component(name.removeprefix('(after) ')) + (' (unsized)' if name.startswith('(after)') else '')) if sec in ('.text', '.rodata') else f'section {sec}'
            totals[comp] = totals.get(comp, 0) + PAGE
            by_sym[name] = by_sym.get(name, 0) + PAGE
MB = lambda b: f'{b / 1048576:.1f}'
print(f'pid {pid} {exe}: {MB(sum(totals.values()))} MB of the binary resident')
print('by section:', ', '.join(f'{k} {MB(v)}' for k, v in sorted(by_section.items(), key=lambda x: -x[1]) if v > 65536))
print('by component:')
for k, v in sorted(totals.items(), key=lambda x: -x[1]):
    print(f'  {MB(v):>6}  {k}')
print('largest symbols (MB):', ', '.join(f'{k[:50]} {MB(v)}' for k, v in sorted(by_sym.items(), key=lambda x: -x[1])[:8]))
