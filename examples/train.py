"""A stand-in training script, logged as a run artifact by the README's examples."""

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

if __name__ == "__main__":
    X, y = load_iris(return_X_y=True)
    print(LogisticRegression(max_iter=300).fit(X, y).score(X, y))
