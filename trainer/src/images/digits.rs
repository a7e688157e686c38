//! The 8×8 handwritten digits that scikit-learn ships (`scripts/fetch-digits.sh`):
//! a real image set small enough to repeat Hinton's CIFAR-10 experiment over
//! several seeds on two CPU cores. One image per line: 64 pixel intensities
//! 0..16, row-major, then the label 0..9, comma-separated, gzip-compressed.

use anyhow::{bail, Context, Result};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use std::io::{BufRead, BufReader};
use std::path::Path;

pub const SIDE: usize = 8;
pub const PIXELS: usize = SIDE * SIDE;
pub const CLASSES: usize = 10;
/// The largest pixel intensity in the file (4×4 blocks of a 32×32 bitmap, counted).
pub const MAX_PIXEL: u32 = 16;

/// Images as rows of `PIXELS` values scaled to [0, 1], with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Digits {
    /// `len() × PIXELS` values, row-major per image.
    pub pixels: Vec<f32>,
    pub labels: Vec<u32>,
}

impl Digits {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Digits {
        let pixels = indices.iter().flat_map(|&i| self.pixels[i * PIXELS..(i + 1) * PIXELS].iter().copied()).collect();
        Digits { pixels, labels: indices.iter().map(|&i| self.labels[i]).collect() }
    }
}

/// Reads a gzip-compressed digits CSV. A corrupt file is an error naming the
/// file and the 1-based line, so a bad download is never trained on silently.
pub fn load(path: &Path) -> Result<Digits> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let gz = libflate::gzip::Decoder::new(file)
        .with_context(|| format!("{}: not a gzip file (run scripts/fetch-digits.sh)", path.display()))?;
    parse(BufReader::new(gz), &path.display().to_string())
}

/// Parses the uncompressed CSV; `name` prefixes every error.
pub fn parse(reader: impl BufRead, name: &str) -> Result<Digits> {
    let mut digits = Digits { pixels: Vec::new(), labels: Vec::new() };
    for (i, line) in reader.lines().enumerate() {
        let at = format!("{name}:{}", i + 1);
        let line = line.with_context(|| format!("{at}: cannot read"))?;
        let fields: Vec<&str> = line.trim_end().split(',').collect();
        if fields.len() != PIXELS + 1 {
            bail!(
                "{at}: expected {} comma-separated fields (64 pixels, then the label), found {}",
                PIXELS + 1,
                fields.len()
            );
        }
        for (k, field) in fields.iter().enumerate() {
            let v: u32 = field
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("{at}: field {} is not a whole number: {field:?}", k + 1))?;
            if k < PIXELS {
                if v > MAX_PIXEL {
                    bail!("{at}: pixel {} is {v}, outside 0..{MAX_PIXEL}", k + 1);
                }
                digits.pixels.push(v as f32 / MAX_PIXEL as f32);
            } else if v as usize >= CLASSES {
                bail!("{at}: label {v} is outside 0..{}", CLASSES - 1);
            } else {
                digits.labels.push(v);
            }
        }
    }
    if digits.is_empty() {
        bail!("{name}: no images");
    }
    Ok(digits)
}

/// Indices of each class, in file order.
fn by_class(labels: &[u32], indices: &[usize]) -> Vec<Vec<usize>> {
    let mut classes = vec![Vec::new(); CLASSES];
    for &i in indices {
        classes[labels[i] as usize].push(i);
    }
    classes
}

/// Splits all images into (train, test) with `test_fraction` of every class
/// in test, drawn by `seed`: class proportions match the whole set, and the
/// same seed always gives the same split (so runs share one test set).
pub fn stratified_split(labels: &[u32], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut class in by_class(labels, &(0..labels.len()).collect::<Vec<_>>()) {
        class.shuffle(&mut rng);
        let n_test = (class.len() as f64 * test_fraction).round() as usize;
        test.extend_from_slice(&class[..n_test]);
        train.extend_from_slice(&class[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// `fraction` of every class among `indices` (at least one image per class
/// present), drawn by `seed`: the small-data condition keeps the class balance.
pub fn stratified_subsample(labels: &[u32], indices: &[usize], fraction: f64, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut picked = Vec::new();
    for mut class in by_class(labels, indices).into_iter().filter(|c| !c.is_empty()) {
        class.shuffle(&mut rng);
        let n = ((class.len() as f64 * fraction).round() as usize).clamp(1, class.len());
        picked.extend_from_slice(&class[..n]);
    }
    picked.sort_unstable();
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn row(pixel: u32, label: u32) -> String {
        let mut fields = vec![pixel.to_string(); PIXELS];
        fields.push(label.to_string());
        fields.join(",")
    }

    fn write_gz(dir: &Path, text: &str) -> std::path::PathBuf {
        let path = dir.join("digits.csv.gz");
        let mut enc = libflate::gzip::Encoder::new(std::fs::File::create(&path).unwrap()).unwrap();
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().into_result().unwrap();
        path
    }

    #[test]
    fn a_valid_file_loads_as_scaled_pixels_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_gz(dir.path(), &format!("{}\n{}\n", row(16, 3), row(4, 9)));
        let d = load(&path).unwrap();
        assert_eq!(d.labels, vec![3, 9]);
        assert_eq!(d.pixels.len(), 2 * PIXELS);
        assert_eq!((d.pixels[0], d.pixels[PIXELS]), (1.0, 0.25));
    }

    #[test]
    fn a_corrupt_file_is_rejected_naming_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let good = row(0, 0);
        let cases = [
            ("1,2,3", "expected 65 comma-separated fields"),
            (&row(17, 1), "pixel 1 is 17, outside 0..16"),
            (&row(3, 10), "label 10 is outside 0..9"),
            (&good.replacen('0', "x", 1), "field 1 is not a whole number"),
            (&good.replacen('0', "-1", 1), "field 1 is not a whole number"),
        ];
        for (bad, why) in cases {
            let path = write_gz(dir.path(), &format!("{good}\n{good}\n{bad}\n{good}\n"));
            let e = load(&path).unwrap_err().to_string();
            assert!(e.contains(&format!("{}:3: ", path.display())), "names file and line 3: {e}");
            assert!(e.contains(why), "{why:?} in {e}");
        }
        std::fs::write(dir.path().join("plain.csv"), good).unwrap();
        assert!(load(&dir.path().join("plain.csv")).unwrap_err().to_string().contains("not a gzip file"));
    }

    /// 100 of class 0, 50 of class 1, 30 of class 2.
    fn skewed_labels() -> Vec<u32> {
        [(0, 100), (1, 50), (2, 30)].iter().flat_map(|&(c, n)| std::iter::repeat_n(c, n)).collect()
    }

    fn count(labels: &[u32], idx: &[usize], class: u32) -> usize {
        idx.iter().filter(|&&i| labels[i] == class).count()
    }

    #[test]
    fn the_split_keeps_class_proportions_and_is_deterministic() {
        let labels = skewed_labels();
        let (train, test) = stratified_split(&labels, 0.2, 7);
        assert_eq!([0, 1, 2].map(|c| count(&labels, &test, c)), [20, 10, 6]);
        assert_eq!([0, 1, 2].map(|c| count(&labels, &train, c)), [80, 40, 24]);
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..labels.len()).collect::<Vec<_>>(), "a partition: no image lost or shared");
        assert_eq!(stratified_split(&labels, 0.2, 7), (train, test.clone()), "same seed, same split");
        assert_ne!(stratified_split(&labels, 0.2, 8).1, test, "another seed draws other images");
    }

    #[test]
    fn the_subsample_keeps_class_proportions_within_the_training_split() {
        let labels = skewed_labels();
        let (train, _) = stratified_split(&labels, 0.2, 7);
        let sub = stratified_subsample(&labels, &train, 0.1, 3);
        assert_eq!([0, 1, 2].map(|c| count(&labels, &sub, c)), [8, 4, 2]);
        assert!(sub.iter().all(|i| train.contains(i)));
        assert_eq!(sub, stratified_subsample(&labels, &train, 0.1, 3));
        // A class too small to round to one image still keeps one.
        assert_eq!(count(&labels, &stratified_subsample(&labels, &train, 0.01, 3), 2), 1);
    }

    #[test]
    fn select_copies_the_chosen_rows() {
        let d = Digits { pixels: (0..3 * PIXELS).map(|v| v as f32).collect(), labels: vec![5, 6, 7] };
        let s = d.select(&[2, 0]);
        assert_eq!(s.labels, vec![7, 5]);
        assert_eq!((s.pixels[0], s.pixels[PIXELS]), ((2 * PIXELS) as f32, 0.0));
    }
}
