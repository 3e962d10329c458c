// The schema of the processing database as numbered migrations (never edit one that has
// shipped; add the next). Tables keep the original names and keys; columns are snake_case,
// times ISO-8601 UTC text, flags INTEGER 0/1. Each stage has a primary (run) table with the
// run's state, label, data_group, dist_group, end_stage, reduction, workdir and registration
// time, and component tables whose rows carry fault (ephemeral, retried) and quality (bad
// input, not retried), where the products are (path_base, uri) and the numbers later rooms
// read.
import type { Dialect, Migration, RoomMigrations } from '../db/index.ts';

/** The columns every run table has, after its key and inputs. */
function runColumns(): string {
  return `state TEXT NOT NULL,
    label TEXT,
    data_group TEXT,
    dist_group TEXT,
    end_stage TEXT,
    reduction TEXT,
    workdir TEXT,
    note TEXT,
    registered TEXT NOT NULL`;
}

/** The columns every component row has, after its keys and own results. */
function componentColumns(d: Dialect): string {
  return `path_base TEXT,
    uri TEXT,
    hostname TEXT,
    dtime_script ${d.double},
    software_ver TEXT,
    data_state TEXT NOT NULL,
    quality INTEGER NOT NULL DEFAULT 0,
    fault INTEGER NOT NULL DEFAULT 0,
    registered TEXT NOT NULL`;
}

/** Indexes every run table needs: by state (advance, pending) and by label (operators). */
function runIndexes(table: string, ...inputs: string[]): string {
  return [
    `CREATE INDEX ${table}_state_label ON ${table} (state, label);`,
    `CREATE INDEX ${table}_label ON ${table} (label);`,
    ...inputs.map((c) => `CREATE INDEX ${table}_${c} ON ${table} (${c});`),
  ].join('\n');
}

const registration: Migration = {
  version: 1,
  name: 'registration: summit, new and raw exposures',
  up: (d) => `
CREATE TABLE summitExp (
    summit_id ${d.idColumn},
    exp_name TEXT NOT NULL,
    camera TEXT NOT NULL,
    telescope TEXT NOT NULL,
    dateobs TEXT,
    exp_type TEXT,
    uri TEXT,
    imfiles INTEGER,
    fault INTEGER NOT NULL DEFAULT 0,
    registered TEXT NOT NULL,
    UNIQUE (exp_name, camera, telescope)
);
CREATE TABLE summitImfile (
    summit_id ${d.bigint} NOT NULL REFERENCES summitExp (summit_id),
    class_id TEXT NOT NULL,
    file_id TEXT,
    bytes ${d.bigint},
    md5sum TEXT,
    uri TEXT,
    registered TEXT NOT NULL,
    PRIMARY KEY (summit_id, class_id)
);
CREATE TABLE newExp (
    exp_id ${d.idColumn},
    summit_id ${d.bigint} REFERENCES summitExp (summit_id),
    tmp_exp_name TEXT NOT NULL,
    tmp_camera TEXT NOT NULL,
    tmp_telescope TEXT NOT NULL,
    state TEXT NOT NULL,
    workdir TEXT,
    reduction TEXT,
    dvodb TEXT,
    tess_id TEXT,
    end_stage TEXT,
    label TEXT,
    registered TEXT NOT NULL,
    UNIQUE (tmp_exp_name, tmp_camera, tmp_telescope)
);
CREATE INDEX newExp_state ON newExp (state);
CREATE TABLE newImfile (
    exp_id ${d.bigint} NOT NULL REFERENCES newExp (exp_id),
    tmp_class_id TEXT NOT NULL,
    uri TEXT,
    bytes ${d.bigint},
    md5sum TEXT,
    registered TEXT NOT NULL,
    PRIMARY KEY (exp_id, tmp_class_id)
);
CREATE TABLE rawExp (
    exp_id ${d.bigint} PRIMARY KEY REFERENCES newExp (exp_id),
    exp_name TEXT NOT NULL,
    camera TEXT NOT NULL,
    telescope TEXT NOT NULL,
    dateobs TEXT,
    exp_tag TEXT,
    exp_type TEXT,
    filelevel TEXT,
    workdir TEXT,
    state TEXT NOT NULL,
    reduction TEXT,
    dvodb TEXT,
    tess_id TEXT,
    end_stage TEXT,
    filter TEXT,
    comment TEXT,
    obs_mode TEXT,
    obs_group TEXT,
    airmass ${d.double},
    ra ${d.double},
    decl ${d.double},
    exp_time ${d.double},
    sat_pixel_frac ${d.double},
    bg ${d.double},
    bg_stdev ${d.double},
    bg_mean_stdev ${d.double},
    alt ${d.double},
    az ${d.double},
    ccd_temp ${d.double},
    posang ${d.double},
    object TEXT,
    sun_angle ${d.double},
    sun_alt ${d.double},
    moon_angle ${d.double},
    moon_alt ${d.double},
    moon_phase ${d.double},
    hostname TEXT,
    fault INTEGER NOT NULL DEFAULT 0,
    registered TEXT NOT NULL,
    UNIQUE (exp_name, camera, telescope)
);
CREATE INDEX rawExp_dateobs ON rawExp (dateobs);
CREATE INDEX rawExp_filter ON rawExp (filter);
CREATE INDEX rawExp_obs_mode ON rawExp (obs_mode);
CREATE TABLE rawImfile (
    exp_id ${d.bigint} NOT NULL REFERENCES rawExp (exp_id),
    class_id TEXT NOT NULL,
    uri TEXT,
    data_state TEXT NOT NULL,
    bytes ${d.bigint},
    md5sum TEXT,
    hostname TEXT,
    bg ${d.double},
    bg_stdev ${d.double},
    ccd_temp ${d.double},
    burntool_state INTEGER,
    ignored INTEGER NOT NULL DEFAULT 0,
    quality INTEGER NOT NULL DEFAULT 0,
    fault INTEGER NOT NULL DEFAULT 0,
    registered TEXT NOT NULL,
    PRIMARY KEY (exp_id, class_id)
);`,
};

const exposureStages: Migration = {
  version: 2,
  name: 'chip, camera, fake and warp stages',
  up: (d) => `
CREATE TABLE chipRun (
    chip_id ${d.idColumn},
    exp_id ${d.bigint} NOT NULL REFERENCES rawExp (exp_id),
    dvodb TEXT,
    tess_id TEXT,
    ${runColumns()}
);
${runIndexes('chipRun', 'exp_id')}
CREATE TABLE chipProcessedImfile (
    chip_id ${d.bigint} NOT NULL REFERENCES chipRun (chip_id),
    class_id TEXT NOT NULL,
    exp_id ${d.bigint} NOT NULL,
    bg ${d.double},
    bg_stdev ${d.double},
    bg_mean_stdev ${d.double},
    fwhm_major ${d.double},
    fwhm_minor ${d.double},
    n_stars INTEGER,
    n_extended INTEGER,
    n_cr INTEGER,
    dtime_detrend ${d.double},
    dtime_photom ${d.double},
    dtime_total ${d.double},
    ${componentColumns(d)},
    PRIMARY KEY (chip_id, class_id),
    FOREIGN KEY (exp_id, class_id) REFERENCES rawImfile (exp_id, class_id)
);
CREATE INDEX chipProcessedImfile_fault ON chipProcessedImfile (fault);
CREATE TABLE camRun (
    cam_id ${d.idColumn},
    chip_id ${d.bigint} NOT NULL REFERENCES chipRun (chip_id),
    dvodb TEXT,
    tess_id TEXT,
    ${runColumns()}
);
${runIndexes('camRun', 'chip_id')}
CREATE TABLE camProcessedExp (
    cam_id ${d.bigint} PRIMARY KEY REFERENCES camRun (cam_id),
    bg ${d.double},
    bg_stdev ${d.double},
    sigma_ra ${d.double},
    sigma_dec ${d.double},
    zpt_obs ${d.double},
    zpt_stdev ${d.double},
    fwhm_major ${d.double},
    fwhm_minor ${d.double},
    n_stars INTEGER,
    n_astrom INTEGER,
    n_extended INTEGER,
    dtime_astrom ${d.double},
    ${componentColumns(d)}
);
CREATE INDEX camProcessedExp_fault ON camProcessedExp (fault);
CREATE TABLE fakeRun (
    fake_id ${d.idColumn},
    cam_id ${d.bigint} NOT NULL REFERENCES camRun (cam_id),
    dvodb TEXT,
    tess_id TEXT,
    ${runColumns()}
);
${runIndexes('fakeRun', 'cam_id')}
CREATE TABLE fakeProcessedImfile (
    fake_id ${d.bigint} NOT NULL REFERENCES fakeRun (fake_id),
    class_id TEXT NOT NULL,
    dtime_fake ${d.double},
    ${componentColumns(d)},
    PRIMARY KEY (fake_id, class_id)
);
CREATE INDEX fakeProcessedImfile_fault ON fakeProcessedImfile (fault);
CREATE TABLE warpRun (
    warp_id ${d.idColumn},
    fake_id ${d.bigint} REFERENCES fakeRun (fake_id),
    tess_id TEXT NOT NULL,
    dvodb TEXT,
    ${runColumns()}
);
${runIndexes('warpRun', 'fake_id')}
CREATE TABLE warpSkyCellMap (
    warp_id ${d.bigint} NOT NULL REFERENCES warpRun (warp_id),
    skycell_id TEXT NOT NULL,
    tess_id TEXT NOT NULL,
    class_id TEXT NOT NULL,
    PRIMARY KEY (warp_id, skycell_id, class_id)
);
CREATE TABLE warpSkyfile (
    warp_id ${d.bigint} NOT NULL REFERENCES warpRun (warp_id),
    skycell_id TEXT NOT NULL,
    tess_id TEXT NOT NULL,
    bg ${d.double},
    bg_stdev ${d.double},
    good_frac ${d.double},
    dtime_warp ${d.double},
    ${componentColumns(d)},
    PRIMARY KEY (warp_id, skycell_id)
);
CREATE INDEX warpSkyfile_fault ON warpSkyfile (fault);
CREATE INDEX warpSkyfile_skycell ON warpSkyfile (tess_id, skycell_id);`,
};

const skyStages: Migration = {
  version: 3,
  name: 'stack, staticsky, skycal and fullforce stages',
  up: (d) => `
CREATE TABLE stackRun (
    stack_id ${d.idColumn},
    skycell_id TEXT NOT NULL,
    tess_id TEXT NOT NULL,
    filter TEXT NOT NULL,
    dvodb TEXT,
    ${runColumns()}
);
${runIndexes('stackRun')}
CREATE INDEX stackRun_skycell ON stackRun (tess_id, skycell_id, filter);
CREATE TABLE stackInputSkyfile (
    stack_id ${d.bigint} NOT NULL REFERENCES stackRun (stack_id),
    warp_id ${d.bigint} NOT NULL REFERENCES warpRun (warp_id),
    PRIMARY KEY (stack_id, warp_id)
);
CREATE INDEX stackInputSkyfile_warp ON stackInputSkyfile (warp_id);
CREATE TABLE stackSumSkyfile (
    stack_id ${d.bigint} PRIMARY KEY REFERENCES stackRun (stack_id),
    bg ${d.double},
    bg_stdev ${d.double},
    good_frac ${d.double},
    mjd_obs ${d.double},
    sources INTEGER,
    dtime_stack ${d.double},
    ${componentColumns(d)}
);
CREATE INDEX stackSumSkyfile_fault ON stackSumSkyfile (fault);
CREATE TABLE staticskyRun (
    sky_id ${d.idColumn},
    ${runColumns()}
);
${runIndexes('staticskyRun')}
CREATE TABLE staticskyInput (
    sky_id ${d.bigint} NOT NULL REFERENCES staticskyRun (sky_id),
    stack_id ${d.bigint} NOT NULL REFERENCES stackRun (stack_id),
    PRIMARY KEY (sky_id, stack_id)
);
CREATE INDEX staticskyInput_stack ON staticskyInput (stack_id);
CREATE TABLE staticskyResult (
    sky_id ${d.bigint} PRIMARY KEY REFERENCES staticskyRun (sky_id),
    sources INTEGER,
    num_inputs INTEGER,
    good_frac ${d.double},
    dtime_phot ${d.double},
    ${componentColumns(d)}
);
CREATE INDEX staticskyResult_fault ON staticskyResult (fault);
CREATE TABLE skycalRun (
    skycal_id ${d.idColumn},
    sky_id ${d.bigint} NOT NULL REFERENCES staticskyRun (sky_id),
    stack_id ${d.bigint} NOT NULL REFERENCES stackRun (stack_id),
    ${runColumns()}
);
${runIndexes('skycalRun', 'sky_id', 'stack_id')}
CREATE TABLE skycalResult (
    skycal_id ${d.bigint} PRIMARY KEY REFERENCES skycalRun (skycal_id),
    sigma_ra ${d.double},
    sigma_dec ${d.double},
    n_astrom INTEGER,
    n_detections INTEGER,
    n_extended INTEGER,
    zpt_obs ${d.double},
    zpt_stdev ${d.double},
    fwhm_major ${d.double},
    fwhm_minor ${d.double},
    dtime_astrom ${d.double},
    ${componentColumns(d)}
);
CREATE INDEX skycalResult_fault ON skycalResult (fault);
CREATE TABLE fullForceRun (
    ff_id ${d.idColumn},
    skycal_id ${d.bigint} NOT NULL REFERENCES skycalRun (skycal_id),
    sources_path_base TEXT,
    ${runColumns()}
);
${runIndexes('fullForceRun', 'skycal_id')}
CREATE TABLE fullForceInput (
    ff_id ${d.bigint} NOT NULL REFERENCES fullForceRun (ff_id),
    warp_id ${d.bigint} NOT NULL REFERENCES warpRun (warp_id),
    PRIMARY KEY (ff_id, warp_id)
);
CREATE TABLE fullForceResult (
    ff_id ${d.bigint} NOT NULL REFERENCES fullForceRun (ff_id),
    warp_id ${d.bigint} NOT NULL REFERENCES warpRun (warp_id),
    n_detections INTEGER,
    ${componentColumns(d)},
    PRIMARY KEY (ff_id, warp_id)
);
CREATE INDEX fullForceResult_fault ON fullForceResult (fault);`,
};

const laterStages: Migration = {
  version: 4,
  name: 'diff, addstar, publish and lap',
  up: (d) => `
CREATE TABLE diffRun (
    diff_id ${d.idColumn},
    tess_id TEXT NOT NULL,
    diff_mode INTEGER NOT NULL DEFAULT 0,
    bothways INTEGER NOT NULL DEFAULT 0,
    dvodb TEXT,
    ${runColumns()}
);
${runIndexes('diffRun')}
CREATE TABLE diffInputSkyfile (
    diff_id ${d.bigint} NOT NULL REFERENCES diffRun (diff_id),
    skycell_id TEXT NOT NULL,
    tess_id TEXT NOT NULL,
    warp1 ${d.bigint} REFERENCES warpRun (warp_id),
    stack1 ${d.bigint} REFERENCES stackRun (stack_id),
    warp2 ${d.bigint} REFERENCES warpRun (warp_id),
    stack2 ${d.bigint} REFERENCES stackRun (stack_id),
    PRIMARY KEY (diff_id, skycell_id)
);
CREATE TABLE diffSkyfile (
    diff_id ${d.bigint} NOT NULL REFERENCES diffRun (diff_id),
    skycell_id TEXT NOT NULL,
    bg ${d.double},
    bg_stdev ${d.double},
    good_frac ${d.double},
    sources INTEGER,
    dtime_diff ${d.double},
    ${componentColumns(d)},
    PRIMARY KEY (diff_id, skycell_id)
);
CREATE INDEX diffSkyfile_fault ON diffSkyfile (fault);
CREATE TABLE addRun (
    add_id ${d.idColumn},
    stage TEXT NOT NULL,
    stage_id ${d.bigint} NOT NULL,
    dvodb TEXT,
    ${runColumns()}
);
${runIndexes('addRun')}
CREATE INDEX addRun_source ON addRun (stage, stage_id);
CREATE TABLE addProcessedExp (
    add_id ${d.bigint} PRIMARY KEY REFERENCES addRun (add_id),
    dvodb_path TEXT,
    dtime_addstar ${d.double},
    ${componentColumns(d)}
);
CREATE INDEX addProcessedExp_fault ON addProcessedExp (fault);
CREATE TABLE publishRun (
    pub_id ${d.idColumn},
    client TEXT NOT NULL,
    stage TEXT NOT NULL,
    stage_id ${d.bigint} NOT NULL,
    ${runColumns()}
);
${runIndexes('publishRun')}
CREATE INDEX publishRun_source ON publishRun (stage, stage_id);
CREATE TABLE publishDone (
    pub_id ${d.bigint} PRIMARY KEY REFERENCES publishRun (pub_id),
    ${componentColumns(d)}
);
CREATE INDEX publishDone_fault ON publishDone (fault);
CREATE TABLE lapSequence (
    seq_id ${d.idColumn},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);
CREATE TABLE lapRun (
    lap_id ${d.idColumn},
    seq_id ${d.bigint} NOT NULL REFERENCES lapSequence (seq_id),
    tess_id TEXT NOT NULL,
    projection_cell TEXT NOT NULL,
    filter TEXT NOT NULL,
    fault INTEGER NOT NULL DEFAULT 0,
    ${runColumns()}
);
${runIndexes('lapRun', 'seq_id')}
CREATE TABLE lapExp (
    lap_id ${d.bigint} NOT NULL REFERENCES lapRun (lap_id),
    exp_id ${d.bigint} NOT NULL REFERENCES rawExp (exp_id),
    chip_id ${d.bigint} REFERENCES chipRun (chip_id),
    pair_id ${d.bigint} REFERENCES chipRun (chip_id),
    private INTEGER NOT NULL DEFAULT 0,
    pairwise INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 0,
    data_state TEXT NOT NULL,
    PRIMARY KEY (lap_id, exp_id)
);
CREATE INDEX lapExp_exp ON lapExp (exp_id);`,
};

const COMPONENT_TABLES = [
  'chipProcessedImfile', 'camProcessedExp', 'fakeProcessedImfile', 'warpSkyfile', 'stackSumSkyfile', 'staticskyResult',
  'skycalResult', 'fullForceResult', 'diffSkyfile', 'addProcessedExp', 'publishDone',
];

const componentNotes: Migration = {
  version: 5,
  name: 'component notes',
  // Why a component faulted or was marked bad, in words (fault and quality are codes).
  up: () => COMPONENT_TABLES.map((t) => `ALTER TABLE ${t} ADD COLUMN note TEXT;`).join('\n'),
};

/** The gpc1 room's migrations, applied on open by {@link openGpc1} (or any `openDatabase` given them). */
export const GPC1_MIGRATIONS: RoomMigrations = Object.freeze({
  room: 'gpc1',
  migrations: Object.freeze([registration, exposureStages, skyStages, laterStages, componentNotes]),
});
