import numpy as np, imageio.v3 as iio
from sarlearn.stages.world.curves import rounded_polygon, resample_closed, smooth_closed
from sarlearn.stages.world.raster import rasterise
V = [(25,25),(225,25),(225,85),(70,85),(70,137),(225,137),(225,225),(25,225)]
def save(name, radii, width=3.0):
    pts = rounded_polygon(np.array(V, float), np.array(radii, float))
    line = smooth_closed(resample_closed(pts, 0.5), sigma=1.0, spacing=0.5)
    img = rasterise(line, 250.0, 4.0, width)
    iio.imwrite(f"runs/settling/{name}.png", (255 * (1 - img)).astype(np.uint8))
save("hairpin", [22, 26, 26, 26, 26, 26, 26, 26])
save("tight", [22, 26, 18, 18, 26, 26, 26, 26])
