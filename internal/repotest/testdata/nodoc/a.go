package nodoc

// X is documented, but the package is not.
const X = 1
