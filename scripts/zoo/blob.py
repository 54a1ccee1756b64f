"""The reference format's binary part: float32 little-endian tensors back to back, indexed by key."""
import numpy as np


class Blob:
    def __init__(self):
        self.parts, self.index, self.offset = [], {}, 0

    def add(self, key, t):
        arr = np.ascontiguousarray(t.detach().cpu().numpy().astype('<f4'))
        self.index[key] = {'offset': self.offset, 'shape': list(arr.shape)}
        self.parts.append(arr.tobytes())
        self.offset += arr.nbytes

    def write(self, path):
        with open(path, 'wb') as f:
            for p in self.parts:
                f.write(p)
