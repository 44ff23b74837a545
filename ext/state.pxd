# C-level state of one run: the molecule pools and the Sim struct that every kernel function
# takes. Lengths in µm, times in µs; "per step" hazards are dimensionless.
from libc.stdint cimport int64_t, int32_t, int8_t, uint8_t, uint16_t

from constants cimport NORMAL_BLOCK
from random cimport mcsyn_rng, mcsyn_lanes

ctypedef struct Pool:
    double *x                       # µm
    double *y                       # µm
    double *z                       # µm (0 <= z <= h in the slab)
    double *clock                   # remaining integrated hazard before a volume reaction or degradation
    int32_t *species                # species index of each molecule
    int32_t *image                  # [3 per molecule] periodic images crossed along x, y, z (unwrapped
                                    # position = position + image * box side); 0 outside a periodic box
    Py_ssize_t n                    # molecules in the pool
    Py_ssize_t capacity             # allocated length of each array

ctypedef struct Sim:
    mcsyn_rng rng                   # the run's generator (copied into locals by the stepping loops)
    mcsyn_lanes lanes               # the generators of the normals' block fill, seeded from rng
    double normals[NORMAL_BLOCK]    # pre-drawn normals for the stepping loops
    int normals_used                # normals of the block already used
    # geometry, µm
    double h                        # cleft height, µm
    double r_cleft                  # cleft radius, µm
    double r_outer                  # outer radius of the band, µm (= r_cleft without one)
    double r_inner                  # varicosity radius: inner sphere of the volume, µm
    double r_domain                 # outer sphere of the volume, µm
    int outside                     # OUTSIDE_* kind
    int outer_absorbing             # 1: the band's outer edge absorbs; 0: reflects
    int domain_reflects             # 1: the sphere R_domain reflects (a closed cell of tissue); 0: absorbs
    int domain_periodic             # 1: the volume is the periodic cube |x|, |y|, |z| < r_domain instead
                                    # of the sphere (a tissue box: leaving one face is entering the other)
    # Exchange between the cleft rim and the volume. A molecule leaving the rim lands uniformly in
    # the mouth shell R_inner < |x| < r_mouth, |z| < mouth_cos |x|, at the azimuth where it left; a
    # volume molecule in that shell enters the slab with enter_probability[sp] per coarse step
    # (0 when the volume does not enter the cleft). compile chooses these so that the two fluxes
    # balance at equal concentrations (detailed balance).
    double r_mouth                  # outer radius of the mouth shell, µm
    double mouth_cos                # |cos θ| bound of the mouth shell
    const double *enter_probability # per species: entry chance per coarse step of a volume molecule in the mouth shell
    const double *entry_depth       # [n_species, ENTRY_DEPTH_QUANTILES]: inverse CDF of an entry depth, µm
    int volume_enters_slab          # 1 if some species enters the slab from the volume
    double rim                      # lateral edge of the slab: R_outer with a band, else R_cleft
    int reflecting_rim              # 1 if that edge reflects
    # time, µs
    double dt_fine                  # fine step, µs
    double dt_coarse                # coarse (volume) step, µs
    int64_t steps_per_coarse        # K: fine steps per coarse step
    int64_t n_coarse                # coarse steps in the run
    int64_t sample_every            # fine steps between samples
    int64_t n_samples               # rows of the series
    # species
    int n_species                   # species
    const double *sigma_fine        # per-axis step sd in the slab, µm
    const double *sigma_volume      # per-axis step sd in the volume per coarse step, µm (D* = D/λ²)
    const double *hazard_cleft      # degradation hazard per fine step in the cleft
    const double *hazard_band       # degradation hazard per fine step in the band
    const double *hazard_volume     # degradation hazard per coarse step in the volume
    const int *membrane_binding     # 1 if some membrane site can bind this species
    const int *slab_hazard          # 1 if a degradation hazard acts in the slab
    # kinetic schemes, over global state index g
    int n_states                    # states of all site types together
    const int32_t *state_ligands    # per state: molecules it holds bound
    const int32_t *bind_start       # per state: first binding transition (CSR offsets, n_states + 1)
    const int32_t *bind_to          # per binding transition: target state
    const int32_t *bind_species     # per binding transition: species bound
    const double *bind_value        # membrane: per-hit probability; volume: hazard per coarse step per free site
    const int32_t *exit_start       # per state: first exit (CSR offsets, n_states + 1)
    const int32_t *exit_to          # per exit: target state
    const int32_t *exit_kind        # per exit: EXIT_* kind
    const int32_t *exit_species     # per exit: species released, taken up or destroyed
    const double *exit_rate         # per µs
    const double *exit_total        # per µs
    # site types
    int n_types                     # site types
    const int32_t *type_volume_index# -1 for membrane types
    const int32_t *type_ground      # global index of each type's state 0
    int n_volume_types              # site types in the volume
    # Sites, by id: membrane sites 0..n_membrane-1 (fixed), then one aggregate clock per volume type
    # (fires when some ground-state volume site of that type takes a first-order exit), then
    # volume-site records. A volume site in its ground state is only a count in vox_free; it gets
    # a record when it leaves the ground state and gives it back when it returns.
    Py_ssize_t n_membrane
    Py_ssize_t n_ids                # ids in use (records freed later are reused through free_ids)
    Py_ssize_t capacity             # allocated length of every per-id array
    int32_t *site_type              # per id: site type
    int32_t *site_state             # per id: global state index
    int8_t *site_plane              # per id: PLANE_* of the site
    double *site_x                  # per id: µm (membrane sites)
    double *site_y                  # per id: µm (membrane sites)
    int32_t *site_voxel             # per id: voxel (volume records; -1 on membranes)
    double *site_next               # per id: time of its next first-order exit, µs
    int32_t *heap                   # min-heap of ids on site_next
    double *heap_key                # per heap position: site_next of the id there
    int32_t *heap_pos               # per id: position in heap (-1: not in it)
    int32_t *free_ids               # recycled volume-record ids
    Py_ssize_t n_free_ids           # entries of free_ids
    Py_ssize_t heap_n               # ids in the heap
    # membrane tile maps
    double tile                     # tile edge, µm
    double inv_tile                 # 1 / tile, per µm
    int64_t n_tile                  # tiles per side of the grid
    double grid_half                # half the grid's width, µm
    int32_t *tile_site              # [n_tile, n_tile, 2]: the two planes of one patch side by side
    uint8_t *tile_code              # per tile: hazard code of the site there now (0: none or inert);
                                    # one byte per tile keeps the grid in L2 cache, where a float per
                                    # tile made every hit a cache miss
    const double *code_hazard       # per code: binding hazard −log(1 − p) of a species-0 hit
    const uint8_t *state_code       # per state: its hazard code
                                    # (0 for empty tiles); kept current on every state change, so a
                                    # hit costs one load instead of tile -> site -> state -> table
    int64_t no_tile                 # index of an extra tile that never holds a site (hits off the grid)
    int64_t *site_tile              # tile index of each membrane site (-1 for volume sites)
    const double *bind_total0       # per state: summed per-hit probability for species 0
    # volume voxels
    double voxel                    # voxel edge, µm
    int64_t n_vox                   # voxels per side of the domain's bounding cube
    int32_t *vox_free               # [n_volume_types, n_vox^3] ground-state sites per voxel
    int64_t *fenwick                # [n_volume_types, n_vox^3 + 1] prefix tree over vox_free, to pick
                                    # a voxel for a ground-state exit in O(log n)
    int64_t *free_total             # [n_volume_types] ground-state sites of each volume type
    double *vox_hazard0             # [n_vox^3] binding hazard per coarse step of a species-0 molecule
                                    # in each voxel, summed over volume types: one load per step
                                    # (kept only while vox_coded is 0)
    # Coded form of vox_hazard0: a large grid's doubles leave the cache (60³ voxels: 1.7 MB), while
    # a field holds few distinct hazards (sites per voxel are small counts), so each voxel keeps a
    # 2-byte code into a small table of exact values: the step's random load fits in L2
    int vox_coded                   # 1: a voxel's hazard is vox_code_value[vox_code[v]]; 0: vox_hazard0[v]
    uint16_t *vox_code              # [n_vox^3] per voxel: code of its species-0 binding hazard
    double *vox_code_value          # [VOX_CODE_LIMIT] per code: the hazard (bit-exact, as vox_hazard0 would hold)
    int32_t *vox_code_slot          # [VOX_HASH_SLOTS] open-addressing hash of the values (-1: empty)
    int32_t vox_n_codes             # codes handed out since the table was last rebuilt
    const int32_t *volume_type_of   # [n_volume_types] volume type -> type
    const double *vol_bind_hazard   # [n_volume_types, n_species] hazard per coarse step per free site
    const double *voxel_weight      # [n_vox^3] voxel volume / extracellular-shell volume inside it
    const int *vol_binding          # per species: some volume site binds it
    # molecules
    Pool slab                       # molecules in the slab
    Pool vol                        # molecules in the volume
    Pool entering                   # volume molecules passing into the slab within this coarse window;
                                    # their clock field holds the fine step (1..K) after which they enter
    int64_t sort_countdown          # fine steps until the slab molecules are next sorted by cell
    int any_membrane_binding        # 1 if some species binds some membrane site
    double volume_clock             # time volume molecules have been advanced to
    # the main loop stops between fine steps when asked (mcsyn_interrupt.h) and resumes from here
    int watch_signals               # 1: this run is the main thread's and stops for a signal it catches
    int64_t fine_done               # fine steps done
    int64_t samples_done            # rows of the series written
    # counters
    int64_t released                # molecules released (injected or effluxed) so far
    int64_t taken_up                # molecules taken up
    int64_t escaped                 # molecules lost at an absorbing edge
    int64_t degraded                # molecules destroyed
    int64_t effluxed                # molecules emitted by reverse transport
    int64_t bound                   # molecules held by sites now
    int64_t binding_events          # bindings so far
    int64_t *state_count            # per state: sites in it now
    # output
    int64_t *series                 # [n_samples, N_SERIES] output
    # detector regions: free volume molecules inside each region, counted at every sample
    Py_ssize_t n_probes
    const int32_t *probe_shape      # per region: PROBE_SPHERE or PROBE_CYLINDER (axis along z)
    const double *probe_centre      # [3 per region], µm
    const double *probe_radius      # per region, µm
    const double *probe_half_length # per region (cylinders), µm
    int64_t *probe_series           # [n_samples, n_probes] output
    # voxel snapshots: free volume molecules per voxel at every snapshot_every-th sample
    int64_t snapshot_every          # 0: no snapshots
    int64_t n_snapshots
    int32_t *snapshots              # [n_snapshots, n_vox^3] output
    int32_t *occupied_snapshots     # [n_snapshots, n_volume_types, n_vox^3] output at the same samples: volume
                                    # sites holding transmitter (state_ligands > 0) per voxel
    int64_t *states_series          # [n_samples, n_states] output
    # injections: groups of inj_count molecules entering together at one time and place
    Py_ssize_t n_inject             # injection groups
    Py_ssize_t next_inject          # first group not yet injected
    double *inj_time                # per group: time, µs
    int64_t *inj_count              # per group: molecules
    double *inj_x                   # per group: µm
    double *inj_y                   # per group: µm
    double *inj_z                   # per group: µm
    int32_t *inj_species            # per group: species
    int8_t *inj_volume              # per group: 1 into the volume, 0 into the slab
    # time-stamped rate changes (ext/schedule.pxi): at change_time[i] the exit row change_exit[i]
    # (leaving state change_state[i]) takes the rate change_rate[i]; exit_rate and exit_total then
    # point at this run's own copies, live_exit_rate and live_exit_total
    Py_ssize_t n_changes            # rate changes in the run (0: exit_rate/exit_total are the model's)
    Py_ssize_t next_change          # first change not yet applied
    const double *change_time       # per change: time, µs (non-decreasing)
    const int32_t *change_exit      # per change: exit row
    const int32_t *change_state     # per change: the state that exit leaves
    const double *change_rate       # per change: new rate, per µs
    double *live_exit_rate          # this run's exit rates, per µs (n_changes > 0 only)
    double *live_exit_total         # this run's exit totals, per µs (n_changes > 0 only)
    uint8_t *state_changed          # per state: scratch flag, 1 while its exits are being redrawn
    const int *track_ground         # per volume type: its free sites are kept in the Fenwick tree
                                    # (a ground-state exit now or after a rate change)
    # closed-loop autoreceptor feedback (feedback.pxi); fb_n_stim = 0 turns it off
    const int32_t *inj_gate         # per group: the feedback stimulus that gates it (-1: not gated)
    const int32_t *inj_slot         # per group: its release site; injected when slot < vesicles released
    Py_ssize_t fb_n_stim            # stimuli of the feedback trains, all trains merged by time
    Py_ssize_t fb_next_stim         # first stimulus not yet decided
    Py_ssize_t fb_next_read         # first stimulus whose activation is not yet read
    int fb_n_states                 # states of the autoreceptor group that count as active
    int fb_started                  # 0 until the filter holds its first value
    const int32_t *fb_state         # per counted state: global state index
    const double *fb_weight         # per counted state: activation weight
    double fb_inv_sites             # 1 / sites of the autoreceptor group
    double fb_gain                  # g in p_k = u_k (1 - g a_k)
    double fb_decay                 # exp(-dt_fine / tau) of the second-messenger filter
    double fb_a                     # the filter's value a(t)
    const double *fb_stim_time      # per stimulus: time, µs (sorted)
    const double *fb_read_time      # per stimulus: time minus the delay, µs
    const int32_t *fb_stim_train    # per stimulus: its train
    const int32_t *fb_train_sites   # per train: release sites (1 without short-term plasticity)
    const double *fb_train_u        # per train: U, the release probability of a filled site
    const double *fb_train_stay_empty  # per train: exp(-interval / tau_recovery) (0: refilled)
    const double *fb_train_facil    # per train: exp(-interval / tau_facilitation) (0: none)
    int64_t *fb_filled              # per train: filled sites now
    double *fb_u                    # per train: u_n of its next stimulus
    int8_t *fb_seen                 # per train: 1 once its first stimulus is decided
    double *fb_a_read               # output per stimulus: a(t_k - delay)
    int64_t *fb_released            # output per stimulus: vesicles released
