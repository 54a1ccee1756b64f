/**
 * The volume explorer's default sample: a 3-D ONNX model and a NIfTI volume it reads as is (the
 * fixture U-Net reads the fixture volume unscaled). The build copies both to samples/<folder>/
 * (web/volume-assets.ts); one constant, so that a better bundled model replaces the pair here.
 */
export const DEFAULT_VOLUME_SAMPLE = {
  model: 'fixtures/volume/unet3d.onnx',
  volume: 'fixtures/volume/volume.nii.gz',
} as const;

/** The URL (relative to the page) a repository file is served at: samples/<folder>/<name>. */
export function sampleUrl(repoPath: string): string {
  const parts = repoPath.split('/');
  return ['samples', parts[parts.length - 2], parts[parts.length - 1]].join('/');
}
