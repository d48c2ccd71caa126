"""The README's A/B testing client example: python examples/ab_with_client.py"""

from mlops_client import AbTestingClient, LocalRouter

with AbTestingClient() as ab:
    ab.create_experiment(
        {
            "key": "checkout_button",
            "model_name": "checkout-ranker",
            "variants": [
                {"name": "control", "weight": 0.5, "model_version": "1"},
                {"name": "treatment", "weight": 0.5, "model_version": "2"},
            ],
            "metrics": [{"name": "purchase", "type": "binary"}],
            "primary_metric": "purchase",
        }
    )
    ab.start("checkout_button")
    print(ab.route("checkout_button", "user_1").variant)  # asks the service
    with LocalRouter(ab, "checkout_button") as router:
        print(router.assign("user_1").variant)  # the same answer, computed here
    ab.send_events(
        [
            {
                "experiment": "checkout_button",
                "user_id": f"user_{i}",
                "metric": "purchase",
                "value": int(i % 3 == 0),
            }
            for i in range(200)
        ]
    )
    results = ab.results("checkout_button")
    print([(v.name, v.exposures) for v in results.variants])
    print(results.metric("purchase").comparisons[0].p_value)
