"""Official pycocotools outputs for test/det/coco-eval-pycocotools.test.ts.

Reads one JSON request on stdin, writes one JSON answer on stdout:
  {"evals": [{"gt", "dt", "iouType", "params"?}...],
   "polys": [{"h", "w", "polys"}...],
   "rles": [{"size", "counts": [...]}...],
   "ious": [{"dt": [rle], "gt": [rle], "iscrowd": [0/1]}...]}
-> {"evals": [{"stats", "precision", "recall", "scores", "per_category_ap"}...],
    "polys": [{"counts": str, "area", "bbox"}...], "rles": [str...], "ious": [[[...]]...]}
Needs pycocotools importable (e.g. built from cocodataset/cocoapi, PythonAPI/).
"""
import contextlib
import copy
import io
import json
import sys

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def run_eval(case):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(case["gt"])
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(case["dt"]))
        e = COCOeval(gt, dt, case["iouType"])
        for key, value in case.get("params", {}).items():
            if key in ("iouThrs", "recThrs"):
                value = np.array(value)
            if key == "useCats":
                value = int(value)
            setattr(e.params, key, value)
        e.evaluate()
        e.accumulate()
        e.summarize()
    prec = e.eval["precision"]
    per_cat = []
    for k in range(prec.shape[2]):
        p = prec[:, :, k, 0, -1]
        p = p[p > -1]
        per_cat.append(float(np.mean(p)) if p.size else -1.0)
    return {
        "stats": [float(s) for s in e.stats],
        "precision": prec.ravel().tolist(),
        "recall": e.eval["recall"].ravel().tolist(),
        "scores": e.eval["scores"].ravel().tolist(),
        "per_category_ap": per_cat,
    }


def run_poly(case):
    rles = mask_utils.frPyObjects(case["polys"], case["h"], case["w"])
    rle = mask_utils.merge(rles)
    return {
        "counts": rle["counts"].decode("ascii"),
        "area": int(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
    }


def compressed(rle):
    if isinstance(rle["counts"], list):
        rle = mask_utils.frPyObjects(rle, rle["size"][0], rle["size"][1])
    return rle


def main():
    req = json.load(sys.stdin)
    out = {
        "evals": [run_eval(c) for c in req.get("evals", [])],
        "polys": [run_poly(c) for c in req.get("polys", [])],
        "rles": [compressed(r)["counts"].decode("ascii") for r in req.get("rles", [])],
        "ious": [],
    }
    for c in req.get("ious", []):
        d = [compressed(r) for r in c["dt"]]
        g = [compressed(r) for r in c["gt"]]
        iou = mask_utils.iou(d, g, c["iscrowd"])
        out["ious"].append(np.asarray(iou).tolist())
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
