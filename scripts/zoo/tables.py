#!/usr/bin/python3
"""Prints the Markdown tables of docs/zoo.md from fixtures/zoo/manifest.json, the references,
verification.json and cli-results.json:  /usr/bin/python3 scripts/zoo/tables.py [ROOT]"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(os.path.join(HERE, '..', '..', 'fixtures', 'zoo'))


import subprocess

REPO = os.path.normpath(os.path.join(HERE, '..', '..'))


def supported_ops():
    """The op types the ONNX engine's gradient registry (src/engine/onnx/ops/index.ts) has a record for."""
    code = "import { SUPPORTED_OPS } from './src/engine/onnx/ops/index.ts'; process.stdout.write(SUPPORTED_OPS.join(' '));"
    out = subprocess.run(['node', '--import', 'tsx', '--input-type=module', '-e', code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


SUPPORTED = supported_ops()
SHAPE_OPS = {'Shape', 'Gather', 'Constant', 'ConstantOfShape', 'Range', 'Equal', 'Where', 'Expand', 'Unsqueeze', 'Concat', 'Slice', 'Cast'}


def short(msg):
    """CLI messages without the list of supported ops or valid layers (printed once in the doc)."""
    return re.split(r'; (supported ops|valid layers):', msg)[0].replace('|', '\\|')


def mb(n):
    return f'{n / 1e6:.2f} MB' if n is not None else '—'


def load(name):
    p = os.path.join(ROOT, name)
    return json.load(open(p)) if os.path.exists(p) else {}


ORDER = ['fcn-resnet50', 'deeplabv3-mobilenetv3', 'lraspp-mobilenetv3', 'segformer-b0-like', 'u2net-like', 'nnunet-like']


def reference(man, n):
    return json.load(open(os.path.join(ROOT, man[n]['folder'], 'reference.json')))


def floors(man):
    """One row per model: the largest float32-vs-float64 difference over layers and regions."""
    for n in ORDER:
        if n not in man:
            continue
        f = reference(man, n)['float32VsFloat64']
        big = lambda d: max(v for r in d.values() for v in (r.values() if isinstance(r, dict) else [r]))  # noqa: E731
        print(f'| {n} | {f["logits"]:.1e} | {max(f["A"].values()):.1e} | {big(f["alpha"]):.1e} | {big(f["cam"]):.1e} |')


def missing_ops(man):
    rows = {}
    for n in ORDER:
        m = man.get(n)
        if not m:
            continue
        for variant, ops in (('f32', m['ops']), ('f16', m.get('opsF16', {})), ('int8', m.get('opsInt8', {}))):
            for o in ops:
                if o not in SUPPORTED:
                    rows.setdefault(o, set()).add(f'{n} ({variant})' if variant != 'f32' else n)
    print('| op | in | note |')
    print('| --- | --- | --- |')
    for o, where in sorted(rows.items()):
        note = 'shape arithmetic (Shape → Gather/Slice → Concat → Reshape): constant for a fixed input, never differentiated' if o in SHAPE_OPS else 'on the differentiated path'
        print(f'| {o} | {", ".join(sorted(where))} | {note} |')


def main():
    if len(sys.argv) > 2:
        man = load('manifest.json')['models']
        {'floors': floors, 'missing': missing_ops}[sys.argv[2]](man)
        return
    man = load('manifest.json')['models']
    ver = load('verification.json')
    cli = load('cli-results.json')
    order = ['fcn-resnet50', 'deeplabv3-mobilenetv3', 'lraspp-mobilenetv3', 'segformer-b0-like', 'u2net-like', 'nnunet-like', 'u2net-like-1024']
    print('## Summary\n')
    print('| model | committed | parameters | input | float32 | float16 | int8 | nodes (f32) |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for n in order:
        m = man.get(n)
        if not m:
            continue
        f = m['files']
        print(f'| {n} | {"yes" if m["committed"] else "no (generated)"} | {m["parameters"]:,} | {m["input"][2]}x{m["input"][3]} | '
              f'{mb(f.get("model.onnx"))} | {mb(f.get("model.f16.onnx"))} | {mb(f.get("model.int8.onnx"))} | {sum(m["ops"].values())} |')
    for n in order:
        m = man.get(n)
        if not m or 'layers' not in m:
            continue
        folder = os.path.join(ROOT, m['folder'])
        ref = json.load(open(os.path.join(folder, 'reference.json')))
        print(f'\n## {n}\n')
        print(f'Input [1, 3, {m["input"][2]}, {m["input"][3]}], output {ref["output"]["shape"]}'
              + (f' after a {ref["output"]["activation"]}' if ref['output']['activation'] else ' (logits)')
              + f'; class explained: {ref["class"]}{" (the sigmoid channel: `--class 1` in the CLI)" if ref["binary"] else ""}; '
              f'pixel {ref["regions"]["pixel"]["imagePixel"]}, box {ref["regions"]["box"]["imageBox"]} (image pixels).\n')
        print('Ops (float32): ' + ', '.join(f'{k} {v}' for k, v in m['ops'].items()) + '.\n')
        allops = set(m['ops']) | set(m.get('opsF16', {})) | set(m.get('opsInt8', {}))
        missing = sorted(allops - SUPPORTED)
        if missing:
            print('Not in the engine\'s gradient list today: ' + ', '.join(f'**{o}**' if o not in SHAPE_OPS else f'{o} (shape arithmetic)' for o in missing) + '.\n')
        extra = {k: v for k, v in m.get('opsF16', {}).items() if m['ops'].get(k) != v}
        if extra:
            print('float16 differs by: ' + ', '.join(f'{k} {v}' for k, v in extra.items()) + '.\n')
        if 'opsInt8' in m:
            extra = {k: v for k, v in m['opsInt8'].items() if m['ops'].get(k) != v}
            print('int8 differs by: ' + ', '.join(f'{k} {v}' for k, v in extra.items()) + '.\n')
        print('| role | ONNX tensor | shape | why | f32 vs f64: A, α (pixel/box), CAM (pixel/box) |')
        print('| --- | --- | --- | --- | --- |')
        fl = ref.get('float32VsFloat64', {})
        for l in ref['layers']:
            r = l['role']
            floor = ''
            if fl:
                floor = (f'{fl["A"][r]:.1e}; {fl["alpha"]["pixel"][r]:.1e} / {fl["alpha"]["box"][r]:.1e}; '
                         f'{fl["cam"]["pixel"][r]:.1e} / {fl["cam"]["box"][r]:.1e}')
            print(f'| {r} | `{l["onnx"]}` | {l["shape"]}{" grid " + str(l["grid"]) if l["grid"] else ""} | {l["why"]} | {floor} |')
        v = ver.get(n)
        if v:
            print('\nONNX Runtime against PyTorch (largest |difference|; labels: share of output cells with the same argmax/threshold):\n')
            print('| file | output | labels | ' + ' | '.join(f'A {l["role"]}' for l in ref['layers']) + ' |')
            print('| --- | --- | --- | ' + ' | '.join('---' for _ in ref['layers']) + ' |')
            for f, r in v.items():
                if 'error' in r:
                    print(f'| {f} | error: {r["error"]} |')
                    continue
                cells = ' | '.join(f'{r["layers"][l["role"]]["maxAbsDiff"]:.1e} (of {r["layers"][l["role"]]["maxAbs"]:.1f})' for l in ref['layers'])
                print(f'| {f} | {r["outputMaxAbsDiff"]:.1e} | {r["labelAgreement"]:.4f} | {cells} |')
        c = cli.get(n)
        if c:
            print('\nThe CLI (`scripts/zoo/try-cli.py`, the engine of this commit):\n')
            print('| file | layers | predict (labels = PyTorch) | explain |')
            print('| --- | --- | --- | --- |')
            for f, r in c.items():
                lay = r['layers']
                ltxt = f'exit {lay["exit"]}' + (f': {lay.get("count")} layers, bottleneck `{lay.get("bottleneck")}`' if lay['exit'] == 0 else f': {short(lay["message"])}')
                if lay.get('referenceListed'):
                    missing = [k for k, ok in lay['referenceListed'].items() if not ok]
                    if missing:
                        ltxt += f'; not listed: {", ".join(missing)}'
                p = r['predict']
                ptxt = f'exit {p["exit"]}' + (f', {p["labelAgreement"]:.4f}' if p['exit'] == 0 else f': {short(p["message"])}')
                runs = []
                for e in r['explain']:
                    t = f'{e["layer"]}/{e["region"]}: exit {e["exit"]}'
                    if e['exit'] != 0:
                        t += f' "{short(e["message"])}"'
                    elif 'alpha' in e and 'rel' in e['alpha']:
                        a, c = e['alpha'], e['cam']
                        t += f', α {a["rel"]:.1e}, CAM {c["rel"]:.1e}' + (' empty' if e.get('empty') else '')
                    elif 'alpha' in e:
                        t += f', {e["alpha"]}'
                    if e['exit'] == 0 and e['layer'] == 'default':
                        t += f' (chose `{e.get("layerChosen")}`)'
                    runs.append(t)
                print(f'| {f} | {ltxt} | {ptxt} | {"<br>".join(runs)} |')


if __name__ == '__main__':
    main()
