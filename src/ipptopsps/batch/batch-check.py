# An independent check of ippToPsps batches (run by batch.test.ts with Debian's python3 and
# astropy): reads the pipeline's catalogue, the DVO region files and the batch, each with
# astropy alone, and compares them after the conversions documented in README.md.
#
#   batch-check.py p2 SMF BATCH DVO_DIR EXP_ID
#   batch-check.py st CMF BATCH DVO_DIR STACK_ID
#   batch-check.py ob DVO_DIR REGION_NAME BATCH
# Prints one JSON object: counts, and "errors" (empty when everything agrees).
import glob
import json
import os
import sys

import numpy as np
from astropy.io import fits

errors = []


def err(what):
    if len(errors) < 50:
        errors.append(what)


def dvo_ids(dvo):
    """detection ID -> objID over every region of the database (cpm EXT_ID -> cpt EXT_ID via AVE_REF)."""
    det_to_obj = {}
    for cpm in glob.glob(os.path.join(dvo, '*', '*.cpm')):
        cpt = cpm[:-4] + '.cpt'
        with fits.open(cpm) as m, fits.open(cpt) as a:
            meas = m[1].data
            ave = a[1].data
            if len(meas) == 0:
                continue
            obj = np.asarray(ave['EXT_ID'], dtype=np.uint64)
            ext = np.asarray(meas['EXT_ID'], dtype=np.uint64)
            ref = np.asarray(meas['AVE_REF'], dtype=np.int64)
            for d, r in zip(ext.tolist(), ref.tolist()):
                det_to_obj[d] = int(obj[r])
    return det_to_obj


def close(name, got, want, rtol=1e-6, atol=0.0):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    bad = ~np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=False)
    if bad.any():
        i = int(np.argmax(bad))
        err(f'{name}: {int(bad.sum())} values differ, e.g. row {i}: {got[i]!r} vs {want[i]!r}')


def missing_to_default(values, default=-999.0):
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(v), v, default)


def check_p2(smf_path, batch_path, dvo, exp_id):
    ids = dvo_ids(dvo)
    smf = fits.open(smf_path)
    batch = fits.open(batch_path)
    det = batch['Detection'].data
    img = batch['ImageMeta'].data
    frame = batch['FrameMeta'].data
    p = smf[0].header
    if len(frame) != 1 or int(frame['frameID'][0]) != exp_id:
        err(f'FrameMeta: {len(frame)} rows, frameID {frame["frameID"][:1]}, expected one row with {exp_id}')
    close('FrameMeta.expStart', frame['expStart'], [p['MJD-OBS']])
    close('FrameMeta.expTime', frame['expTime'], [p['EXPTIME']])
    chips = [h for h in smf if (h.name or '').upper().endswith('.PSF') and h.name.upper().startswith('XY')]
    total = 0
    for h in chips:
        chip = h.name.split('.')[0].upper()
        ccd = 10 * int(chip[2]) + int(chip[3])
        image_id = 100 * exp_id + ccd
        head = smf[chip + '.hdr'].header
        src = h.data
        rows = det[det['imageID'] == image_id]
        rows = rows[np.argsort(rows['ippDetectID'], kind='stable')]
        order = np.argsort(np.asarray(src['IPP_IDET'], dtype=np.int64), kind='stable')
        src = src[order]
        n = len(src)
        total += n
        if len(rows) != n:
            err(f'{chip}: {len(rows)} Detection rows for {n} smf rows')
            continue
        if n == 0:
            continue
        idet = np.asarray(src['IPP_IDET'], dtype=np.int64)
        if not np.array_equal(np.asarray(rows['ippDetectID'], dtype=np.int64), idet):
            err(f'{chip}: ippDetectID differs from IPP_IDET')
        extern = int(head['IMAGEID'])
        want_det = (extern << 32) | idet
        if not np.array_equal(np.asarray(rows['detectID'], dtype=np.int64), want_det):
            err(f'{chip}: detectID is not IMAGEID<<32 | IPP_IDET')
        want_obj = np.array([ids.get(int(d), -1) for d in want_det.tolist()], dtype=np.int64)
        if (want_obj < 0).any():
            err(f'{chip}: {(want_obj < 0).sum()} detections unknown to the DVO region files')
        if not np.array_equal(np.asarray(rows['objID'], dtype=np.int64), want_obj):
            err(f'{chip}: objID differs from DVO region files')
        close(f'{chip} ra', rows['ra'], src['RA_PSF'], rtol=0)
        close(f'{chip} dec', rows['dec'], src['DEC_PSF'], rtol=0)
        close(f'{chip} xPos', rows['xPos'], missing_to_default(src['X_PSF']), rtol=0)
        zpt = head['ZPT_OBS']
        exptime = head['EXPTIME']
        k = 3631.0 * 10 ** (-0.4 * zpt) / exptime
        close(f'{chip} psfFlux', rows['psfFlux'], missing_to_default(np.asarray(src['PSF_INST_FLUX'], dtype=np.float64) * k), rtol=1e-6)
        close(f'{chip} apFlux', rows['apFlux'], missing_to_default(np.asarray(src['AP_FLUX'], dtype=np.float64) * k), rtol=1e-6)
        s = np.asarray(src['PLTSCALE'], dtype=np.float64)
        close(f'{chip} raErr', rows['raErr'], missing_to_default(np.asarray(src['X_PSF_SIG'], dtype=np.float64) * s), rtol=1e-6)
        close(f'{chip} momentXX', rows['momentXX'], missing_to_default(np.asarray(src['MOMENTS_XX'], dtype=np.float64) * s * s), rtol=1e-6)
        close(f'{chip} obsTime', rows['obsTime'], np.full(n, p['MJD-OBS'] + exptime / 2 / 86400), rtol=0, atol=1e-9)
        flags = np.asarray(src['FLAGS'], dtype=np.uint32).view(np.int32)
        if not np.array_equal(np.asarray(rows['infoFlag'], dtype=np.int32), flags):
            err(f'{chip}: infoFlag differs from FLAGS')
        im = img[img['imageID'] == image_id]
        if len(im) != 1:
            err(f'{chip}: {len(im)} ImageMeta rows for imageID {image_id}')
        else:
            close(f'{chip} photoZero', im['photoZero'], [zpt])
            if int(im['nDetect'][0]) != n:
                err(f'{chip}: ImageMeta.nDetect {im["nDetect"][0]} for {n} detections')
    if len(det) != total:
        err(f'Detection has {len(det)} rows; the smf chips hold {total}')
    objs = batch['ObjectThin'].data
    if set(np.asarray(objs['objID'], dtype=np.int64).tolist()) != set(np.asarray(det['objID'], dtype=np.int64).tolist()):
        err('ObjectThin stubs are not the objIDs of the detections')
    return {'rows': int(len(det)), 'chips': len(chips), 'objects': int(len(objs))}


def check_st(cmf_path, batch_path, dvo, stack_id):
    ids = dvo_ids(dvo)
    cmf = fits.open(cmf_path)
    batch = fits.open(batch_path)
    p = cmf[0].header
    f = str(p['FPA.FILTER'])[0]
    src = cmf['SkyChip.psf'].data
    rows = batch['StackObjectThin'].data
    meta = batch['StackMeta'].data
    if len(meta) != 1 or int(meta['stackImageID'][0]) != stack_id:
        err(f'StackMeta: {len(meta)} rows, expected one for stack {stack_id}')
    inputs = batch['StackToImage'].data
    if not (np.asarray(inputs['stackImageID'], dtype=np.int64) == stack_id).all():
        err('StackToImage.stackImageID is not the StackMeta stack')
    images = np.asarray(inputs['imageID'], dtype=np.int64)
    if len(np.unique(images)) != len(images):
        err('StackToImage repeats an imageID')
    # imageID = 100 * exposure + OTA number XYnm (10n + m, both digits 0..7)
    ota = images % 100
    if not ((ota // 10 <= 7) & (ota % 10 <= 7)).all():
        err('StackToImage.imageID with an OTA number that is not XYnm')
    n = len(src)
    if len(rows) != n:
        err(f'{len(rows)} StackObjectThin rows for {n} cmf rows')
        return {'rows': int(len(rows))}
    rows = rows[np.argsort(rows[f + 'ippDetectID'], kind='stable')]
    src = src[np.argsort(np.asarray(src['IPP_IDET'], dtype=np.int64), kind='stable')]
    idet = np.asarray(src['IPP_IDET'], dtype=np.int64)
    want_det = (int(p['IMAGEID']) << 32) | idet
    if not np.array_equal(np.asarray(rows['uniquePspsSTid'], dtype=np.int64), want_det):
        err('uniquePspsSTid is not IMAGEID<<32 | IPP_IDET')
    want_obj = np.array([ids.get(int(d), -1) for d in want_det.tolist()], dtype=np.int64)
    if not np.array_equal(np.asarray(rows['objID'], dtype=np.int64), want_obj):
        err('objID differs from DVO region files')
    off = p['ZPT_OBS'] + 2.5 * np.log10(p['EXPTIME'])
    close(f + 'PSFMag', rows[f + 'PSFMag'], missing_to_default(np.asarray(src['PSF_INST_MAG'], dtype=np.float64) + off), rtol=1e-6)
    close(f + 'ra', rows[f + 'ra'], src['RA_PSF'], rtol=0)
    close(f + 'dec', rows[f + 'dec'], src['DEC_PSF'], rtol=0)
    if not (np.asarray(rows[f + 'stackImageID']) == stack_id).all():
        err(f + 'stackImageID is not the stack ID')
    others = [g for g in 'grizy' if g != f]
    for g in others:
        if not (np.asarray(rows[g + 'PSFMag']) == -999).all():
            err(f'{g}PSFMag is filled in a {f} stack batch')
    return {'rows': int(len(rows)), 'filter': f, 'images': sorted(int(x) for x in images.tolist())}


def check_ob(dvo, region, batch_path):
    batch = fits.open(batch_path)
    thin = batch['ObjectThin'].data
    mean = batch['MeanObject'].data
    with fits.open(os.path.join(dvo, region + '.cpt')) as a:
        ave = a[1].data
        obj = np.asarray(ave['EXT_ID'], dtype=np.uint64).astype(np.int64)
        if len(thin) != len(ave) or len(mean) != len(ave):
            err(f'{len(thin)} ObjectThin and {len(mean)} MeanObject rows for {len(ave)} region objects')
            return {'rows': int(len(thin))}
        if not np.array_equal(np.asarray(thin['objID'], dtype=np.int64), obj):
            err('ObjectThin.objID differs from the region\'s EXT_ID')
        if not np.array_equal(np.asarray(mean['objID'], dtype=np.int64), obj):
            err('MeanObject.objID differs from the region\'s EXT_ID')
        close('raMean', thin['raMean'], ave['RA'], rtol=0)
        close('decMean', thin['decMean'], ave['DEC'], rtol=0)
        close('nDetections', thin['nDetections'], ave['NMEASURE'], rtol=0)
        zone = np.floor((90 + np.asarray(ave['DEC'], dtype=np.float64)) / 0.0083333)
        close('zoneID', thin['zoneID'], zone, rtol=0)
    return {'rows': int(len(thin))}


mode = sys.argv[1]
if mode == 'p2':
    out = check_p2(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
elif mode == 'st':
    out = check_st(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
elif mode == 'ob':
    out = check_ob(sys.argv[2], sys.argv[3], sys.argv[4])
else:
    raise SystemExit(f'unknown mode {mode}')
out['errors'] = errors
print(json.dumps(out))
